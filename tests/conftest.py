"""Fixtures every test package may use: a real sshd on 127.0.0.1 and the emulated Raspberry Pi."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.arm_target.emulated_pi import EmulatedPi, cannot_emulate
from tests.sshd import LocalSshd, sshd_missing


@pytest.fixture(scope="session")
def local_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSshd]:
    """One OpenSSH server for the session; tests that need it skip, saying why, where sshd is not installed."""
    reason = sshd_missing()
    if reason is not None:
        pytest.skip(reason)
    server = LocalSshd.start(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def emulated_pi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedPi]:
    """The emulated Raspberry Pi (aarch64 under qemu-user) as the SSH target ``pi-emulated`` of ``pi.config``.

    Built on first use (about 7 minutes) and cached outside the clone; skipped, with the reason, on a machine
    without root or binfmt_misc.
    """
    reason = cannot_emulate()
    if reason is not None:
        pytest.skip(reason)
    pi = EmulatedPi.start(tmp_path_factory.mktemp("pi"))
    try:
        yield pi
    finally:
        pi.stop()
