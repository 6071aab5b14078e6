"""The emulated Raspberry Pi as a pytest fixture: an arm64 Debian root file system with torch, run by qemu-user,
its sshd on 127.0.0.1, reachable as the SSH target ``pi-emulated``.

``build_rootfs.sh`` builds the root file system once (about 7 minutes) into a cache outside the clone,
``$BENCH_ARM_CACHE`` or /var/cache/compression-bench/arm-target, and reuses it while its stamp matches;
``start_sshd.sh`` starts the aarch64 sshd. Both need root (debootstrap, chroot, mounts) and binfmt_misc, so a
machine without them skips these tests and says which is missing. Timings under emulation mean nothing: the
tests check the path (ship, run on aarch64 torch, JSON back), never a speed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.sshd import free_port

__all__ = ["EmulatedPi", "cannot_emulate", "DEVICE_PYTHON", "TARGET_NAME"]

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = Path("/var/cache/compression-bench/arm-target")
TARGET_NAME = "pi-emulated"
DEVICE_PYTHON = "/opt/venv/bin/python"
_BUILD_TIMEOUT_S = 40 * 60
_LOGIN_TIMEOUT_S = 120.0


def cannot_emulate() -> str | None:
    """Why this machine cannot run the emulated Pi (a reason for pytest.skip), or None."""
    if os.geteuid() != 0:
        return "the emulated Pi needs root (debootstrap, chroot, mounts, binfmt_misc)"
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    if not (binfmt / "status").exists():
        mounted = subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt)], capture_output=True, check=False
        )
        if mounted.returncode != 0:
            return f"binfmt_misc is not available here ({mounted.stderr.decode(errors='replace').strip()})"
    return None


@dataclass
class EmulatedPi:
    """A running emulated Pi and the config file that names it as the target ``pi-emulated``."""

    rootfs: Path
    port: int
    config: Path
    sshd_pid: int

    @classmethod
    def start(cls, directory: Path, cache: Path | None = None) -> EmulatedPi:
        """Build or reuse the root file system, start its sshd with a throwaway key, wait for a login."""
        cache = cache or Path(os.environ.get("BENCH_ARM_CACHE", DEFAULT_CACHE))
        subprocess.run([str(HERE / "build_rootfs.sh"), str(cache)], check=True, timeout=_BUILD_TIMEOUT_S)
        rootfs = cache / "rootfs"
        directory.mkdir(parents=True, exist_ok=True)
        key = directory / "pi_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pi-emulated", "-f", str(key)], check=True)
        port = free_port()
        started = subprocess.run(
            [str(HERE / "start_sshd.sh"), str(rootfs), f"{key}.pub", str(port), str(directory / "sshd.log")],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        host_key = (rootfs / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
        known_hosts = directory / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
        config = directory / "pi.toml"
        config.write_text(
            f'[targets.{TARGET_NAME}]\nkind = "ssh"\nhost = "127.0.0.1"\nport = {port}\nuser = "pi"\n'
            f'identity_file = "{key}"\n'
            f'ssh_options = ["UserKnownHostsFile={known_hosts}", "StrictHostKeyChecking=yes"]\n'
            f'python = "{DEVICE_PYTHON}"\nworkdir = "/tmp/compression-bench"\n'
            # Emulated torch imports in about 10 s and runs models tens of times slower than the host.
            "timeout_margin_s = 600\n"
        )
        pi = cls(rootfs, port, config, int(started.stdout.strip()))
        pi._wait_for_login(key, known_hosts)
        return pi

    def _wait_for_login(self, key: Path, known_hosts: Path) -> None:
        deadline = time.monotonic() + _LOGIN_TIMEOUT_S
        argv = ["ssh", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known_hosts}", "-o", "ConnectTimeout=10",
                "-i", str(key), "-p", str(self.port), "pi@127.0.0.1", "true"]  # fmt: skip
        while True:
            done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=_LOGIN_TIMEOUT_S)
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the emulated Pi's sshd did not let pi in: {done.stderr.strip()}")
            time.sleep(1)

    def stop(self) -> None:
        """Stop the sshd and every session it forked (its process group); the mounts go with its namespace."""
        try:
            os.killpg(self.sshd_pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def main() -> int:
    """``python -m tests.arm_target.emulated_pi DIR``: start the emulated Pi by hand and print how to use it."""
    if len(sys.argv) != 2 or cannot_emulate():
        print(f"usage: python -m tests.arm_target.emulated_pi DIR (as root); {cannot_emulate() or ''}", file=sys.stderr)
        return 2
    pi = EmulatedPi.start(Path(sys.argv[1]).resolve())
    print(f"python -m bench target check {TARGET_NAME} --config {pi.config}")
    print(f"python -m bench run --config {pi.config} --targets cpu,{TARGET_NAME} ...")
    print(f"stop it with: kill -- -{pi.sshd_pid}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
