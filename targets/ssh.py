"""A remote device (a Raspberry Pi, any ARM or x86 board) reached with the OpenSSH client.

The host copies the worker zipapp and each artifact into a private folder of the device's workdir, starts the worker
there over one ssh connection that stays open, and speaks the worker protocol through it: only JSON comes back.
The user's own ssh config, keys and agent apply; nothing here is passed through a shell on the host, and every
word of the remote command is quoted for the remote shell.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Self

from targets._worker_target import WorkerTarget
from targets._zipapp import worker_zipapp
from targets.base import TargetError
from targets.settings import SettingsError, ThermalPolicy, parse_settings

__all__ = ["MIN_DEVICE_TORCH", "SshSettings", "SshTarget"]

MIN_DEVICE_TORCH = (2, 9)
"""The oldest torch on a device known to load the TorchScript artifacts this host writes (checked in CI on
aarch64 with torch 2.9.1)."""

_HOST = re.compile(r"^[A-Za-z0-9_.:\[\]%@-]+$")
_OPTION = re.compile(r"^[A-Za-z][A-Za-z0-9]*=\S.*$")
_HASH_CHUNK = 1 << 20
_ARTIFACT_KEYS = ("baseline", "candidate", "inputs")  # the pair fields that are host paths (a gemm pair has none)
_ASSUMED_LINK_BYTES_PER_S = 1e6  # an upload's timeout grows by its size at 1 MB/s, a slow Wi-Fi link


@dataclasses.dataclass(frozen=True, kw_only=True)
class SshSettings(ThermalPolicy):
    """``[targets.NAME]`` of ``kind = "ssh"``.

    Attributes:
        host: Host name or alias from the ssh config (``pi4.local``, ``192.168.1.20``).
        user: Login user; the ssh config's when unset.
        port: SSH port; the ssh config's when unset.
        identity_file: Private key; the ssh config's and the agent's when unset.
        ssh_config: An ssh config file used instead of ``~/.ssh/config``.
        ssh_options: More ``-o`` options, as ``Key=Value`` (e.g. ``StrictHostKeyChecking=accept-new``).
        python: The device's interpreter with torch, e.g. a venv's ``/home/pi/venv/bin/python``.
        workdir: Folder on the device; each session works in a fresh subfolder and removes it at the end.
        connect_timeout_s: How long to wait for the TCP connection and the login.
        command_timeout_s: How long a copy or a cleanup may take, before the copy's own size is allowed for.
        timeout_margin_s: Seconds allowed beyond a timing request's budget: importing torch on a small board
            and loading its artifacts take tens of seconds.
    """

    host: str
    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    ssh_config: str | None = None
    ssh_options: tuple[str, ...] = ()
    python: str = "python3"
    workdir: str = "/tmp/compression-bench"
    connect_timeout_s: float = 10.0
    command_timeout_s: float = 60.0
    timeout_margin_s: float = 300.0

    def validate(self, where: str) -> None:
        """Raise ``SettingsError``, naming ``where`` (``[targets.NAME]``), for values the types alone let through."""
        if not _HOST.match(self.host) or self.host.startswith("-"):
            raise SettingsError(f"{where}: host {self.host!r} is not a host name or address")
        if self.user is not None and (not self.user or self.user.startswith("-") or not _HOST.match(self.user)):
            raise SettingsError(f"{where}: user {self.user!r} is not a user name")
        if self.port is not None and not 1 <= self.port <= 65535:
            raise SettingsError(f"{where}: port must be in 1..65535, got {self.port}")
        for option in self.ssh_options:
            if not _OPTION.match(option):
                raise SettingsError(f"{where}: ssh_options entries are Key=Value, got {option!r}")
        for key in ("python", "workdir"):
            value = getattr(self, key)
            if not value or value.startswith("-") or any(c in value for c in "\0\n"):
                raise SettingsError(f"{where}: {key} {value!r} is not a path")
        if self.connect_timeout_s <= 0 or self.command_timeout_s <= 0 or self.timeout_margin_s <= 0:
            raise SettingsError(f"{where}: timeouts must be > 0")


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()[:16]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text.split("+")[0])[:2])


class SshTarget(WorkerTarget):
    """Times models on a remote device through ``ssh``, with the same worker and protocol as the local CPU."""

    def __init__(self, name: str, settings: SshSettings) -> None:
        """Describe the target; nothing connects until the first request.

        Args:
            name: The target's name, recorded with each measurement.
            settings: Where the device is and how to reach it.
        """
        settings.validate(f"[targets.{name}]")
        self.settings = settings
        self.session_dir = f"{settings.workdir.rstrip('/') or '/'}/session-{secrets.token_hex(4)}"
        # Named by its digest (worker-<sha256 prefix>.pyz), as artifacts are: the name says which sources run there.
        self._zipapp = worker_zipapp()
        python, zipapp = shlex.quote(settings.python), shlex.quote(self._zipapp.name)
        start = f"cd {shlex.quote(self.session_dir)} && exec {python} -u {zipapp}"
        super().__init__(name, self._ssh_argv(start), thermal=settings, timeout_margin_s=settings.timeout_margin_s)
        self._uploaded: set[str] = set()
        self._digests: dict[tuple[str, int, int], str] = {}
        self._prepared = False  # the session folder and the zipapp are believed to be on the device
        self._created = False  # the session folder was made, so closing removes it

    @classmethod
    def from_table(cls, name: str, table: Mapping[str, Any]) -> Self:
        """The target ``[targets.NAME]`` describes; raises ``SettingsError`` for a bad key or value."""
        return cls(name, parse_settings(SshSettings, table, f"[targets.{name}]"))

    def available(self) -> tuple[bool, str]:
        """Whether the OpenSSH client is installed; whether the device answers is the first request's business."""
        if shutil.which("ssh") is None:
            return False, "the OpenSSH client 'ssh' is not on PATH (Debian/Ubuntu: apt install openssh-client)"
        return True, ""

    def machine_info(self) -> dict[str, Any]:
        """The device's ``info`` answer; a device whose python lacks torch gets a message that says so."""
        try:
            return super().machine_info()
        except TargetError as error:
            if "No module named 'torch'" in f"{error}\n{error.detail}":
                raise TargetError(
                    f"{self.name}: {self.settings.python} on {self.settings.host} cannot import torch; install it there"
                    " (pip install torch) or point 'python' at an environment that has it",
                    detail=error.detail,
                ) from None
            raise

    def close(self) -> None:
        """Stop the worker and remove this session's folder from the device (best effort)."""
        super().close()
        if self._created:
            self._created = False
            try:
                self._run(
                    f"rm -rf -- {shlex.quote(self.session_dir)}",
                    "removing the session folder",
                    timeout_s=self.settings.connect_timeout_s + 10,
                )
            except TargetError:
                pass  # the device is gone; its /tmp is its own to clean
        self._forget()

    def _ssh_argv(self, remote_command: str) -> list[str]:
        """``ssh`` with batch mode, timeouts and keep-alives, the settings' options, the host, and the command."""
        s = self.settings
        argv = ["ssh", "-T", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                "-o", f"ConnectTimeout={max(1, round(s.connect_timeout_s))}",
                "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]  # fmt: skip
        if s.ssh_config is not None:
            argv += ["-F", s.ssh_config]
        if s.port is not None:
            argv += ["-p", str(s.port)]
        if s.identity_file is not None:
            argv += ["-i", s.identity_file, "-o", "IdentitiesOnly=yes"]
        if s.user is not None:
            argv += ["-l", s.user]
        for option in s.ssh_options:
            argv += ["-o", option]
        return [*argv, "--", s.host, remote_command]

    def _run(self, remote_command: str, what: str, timeout_s: float, stdin: BinaryIO | None = None) -> None:
        """Run one remote command to completion, or raise ``TargetError`` with ssh's own words."""
        try:
            done = subprocess.run(
                self._ssh_argv(remote_command), stdin=stdin if stdin is not None else subprocess.DEVNULL,
                capture_output=True, timeout=timeout_s, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise TargetError(
                f"{self.name}: {what} on {self.settings.host} timed out after {timeout_s:.0f} s"
            ) from None
        if done.returncode != 0:
            stderr = done.stderr.decode("utf-8", errors="replace").strip()
            last = stderr.splitlines()[-1] if stderr else f"exit code {done.returncode}"
            stage = "ssh could not connect or log in" if done.returncode == 255 else what
            raise TargetError(f"{self.name}: {stage} ({self.settings.host}): {last}", detail=stderr)

    def _put(self, local: Path, remote_name: str) -> None:
        """Copy ``local`` to the session folder through the ssh connection (``cat``: no sftp server needed)."""
        final = f"{self.session_dir}/{remote_name}"
        partial = f"{final}.part"
        command = f"cat > {shlex.quote(partial)} && mv -f -- {shlex.quote(partial)} {shlex.quote(final)}"
        timeout_s = self.settings.command_timeout_s + local.stat().st_size / _ASSUMED_LINK_BYTES_PER_S
        with local.open("rb") as f:
            self._run(command, f"copying {local.name}", timeout_s, stdin=f)

    def _prepare(self) -> None:
        if self._prepared:
            return
        self._run(
            f"mkdir -p -- {shlex.quote(self.session_dir)}",
            "creating the session folder",
            self.settings.command_timeout_s,
        )
        self._created = True
        self._put(self._zipapp, self._zipapp.name)
        self._prepared = True

    def _check_machine(self, machine: dict[str, Any]) -> None:
        torch_version = str(machine.get("torch", ""))
        if _version(torch_version) < MIN_DEVICE_TORCH:
            minimum = ".".join(map(str, MIN_DEVICE_TORCH))
            raise TargetError(
                f"{self.name}: torch {torch_version} on {self.settings.host} is too old for the artifacts this host"
                f" writes; torch >= {minimum} is needed there (pip install 'torch>={minimum}')"
            )

    def _remote_path(self, local: str) -> str:
        path = Path(local)
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in self._digests:
            self._digests[key] = _digest(path)
        name = f"{self._digests[key]}{path.suffix}"
        if name not in self._uploaded:
            self._put(path, name)
            self._uploaded.add(name)
        return f"{self.session_dir}/{name}"

    def _ship(self, pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self._prepare()  # the artifacts go into the session folder, which a lost connection may have left unmade
        return [
            {**pair, **{key: self._remote_path(pair[key]) for key in _ARTIFACT_KEYS if key in pair}} for pair in pairs
        ]

    def _unship(self, shipped: Sequence[dict[str, Any]]) -> None:
        """Remove the candidates (each is timed once); baselines stay for the next cells of the same model."""
        keep = {pair["baseline"] for pair in shipped if "baseline" in pair}
        drop = sorted({pair["candidate"] for pair in shipped if "candidate" in pair} - keep)
        if drop:
            self._run(
                "rm -f -- " + " ".join(shlex.quote(path) for path in drop),
                "removing timed artifacts",
                self.settings.command_timeout_s,
            )
            self._uploaded.difference_update(path.rsplit("/", 1)[1] for path in drop)

    def _forget(self) -> None:
        self._uploaded.clear()
        self._prepared = False
