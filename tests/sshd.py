"""A real OpenSSH server on 127.0.0.1 for the SSH target's tests, with throwaway keys and no password.

The server runs Debian's ``/usr/sbin/sshd`` on a free port with a config of its own (nothing of the machine's
sshd setup is used or touched), accepts one fresh client key for the current user, and goes away with the
test session. The client side is an ssh config file that pins the server's host key, so connections are
strict (no "accept the new key" prompt, no entry in the user's known_hosts).
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SSHD", "LocalSshd", "free_port", "sshd_missing"]

SSHD = Path("/usr/sbin/sshd")
_START_TIMEOUT_S = 20.0


def sshd_missing() -> str | None:
    """Why no test sshd can start here (a reason for pytest.skip), or None."""
    if not SSHD.is_file():
        return f"{SSHD} not found: install Debian's openssh-server (apt-get install openssh-server)"
    return None


def free_port() -> int:
    """A localhost TCP port that was free a moment ago: for a server to listen on, or to be refused at."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "compression-bench-test", "-f", str(path)], check=True
    )


@dataclass
class LocalSshd:
    """A running test sshd and what a client needs to reach it as ``alias`` through ``ssh_config``."""

    directory: Path
    port: int
    user: str
    alias: str
    ssh_config: Path
    client_key: Path
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, directory: Path, alias: str = "bench-local") -> LocalSshd:
        """Generate keys and configs in ``directory``, start sshd and wait until it accepts connections."""
        directory.mkdir(parents=True, exist_ok=True)
        host_key, client_key = directory / "host_key", directory / "client_key"
        _keygen(host_key)
        _keygen(client_key)
        (directory / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
        port, user = free_port(), getpass.getuser()
        config = directory / "sshd_config"
        config.write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
            f"AuthorizedKeysFile {directory}/authorized_keys\n"
            f"PidFile {directory}/sshd.pid\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
        )
        host_public = host_key.with_suffix(".pub").read_text().split()
        (directory / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_public[0]} {host_public[1]}\n")
        ssh_config = directory / "ssh_config"
        ssh_config.write_text(
            f"Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {client_key}\n"
            f"  IdentitiesOnly yes\n  UserKnownHostsFile {directory}/known_hosts\n  StrictHostKeyChecking yes\n"
        )
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
        log = (directory / "sshd.log").open("wb")
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=log, start_new_session=True
        )
        server = cls(directory, port, user, alias, ssh_config, client_key, process)
        server._wait_until_listening()
        return server

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"sshd exited with {self.process.returncode}: {(self.directory / 'sshd.log').read_text()[-500:]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"sshd did not listen on 127.0.0.1:{self.port} within {_START_TIMEOUT_S:.0f} s")

    def target_table(self, **settings: object) -> dict[str, object]:
        """A ``[targets.NAME]`` table that reaches this server through its ssh config."""
        return {"kind": "ssh", "host": self.alias, "ssh_config": str(self.ssh_config), **settings}

    def stop(self) -> None:
        """Stop the server and every session it forked (they share its process group)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
