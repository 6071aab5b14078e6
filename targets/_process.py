"""A persistent worker process spoken to in JSON lines, with a deadline on every answer."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from targets.base import TargetError

__all__ = ["WorkerProcess", "describe_exit", "meaningful_line"]

_STDERR_TAIL_BYTES = 4096
_STDERR_TAIL_LINES = 20
_EXIT_GRACE_S = 2.0
# `path.py:12: UserWarning: text`, as the warnings module prints it; the next, indented line is its source.
_WARNING = re.compile(r":\d+: \w*Warning: ")
# The last line of a Python traceback: `RuntimeError: text`, `torch.OutOfMemoryError: text`, `MemoryError`.
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b(:|$)")


def describe_exit(returncode: int | None) -> str:
    """How a process ended, in words: a negative code is the signal that killed it (the OOM killer's SIGKILL)."""
    if returncode is None:
        return "closed its input"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "an unknown signal"
        return f"was killed by {name} (signal {-returncode})"
    return f"exited with code {returncode}"


def meaningful_line(stderr: str) -> str:
    """The line of a worker's stderr that says why it stopped: its exception, else its last non-warning line.

    Warnings (a deprecation printed at import) often come last or right before a crash; the message should name
    the `RuntimeError` or `MemoryError`, not the warning that happened to precede the kill.
    """
    kept: list[str] = []
    after_warning = False
    for line in stderr.splitlines():
        if not line.strip():
            continue
        if _WARNING.search(line):
            after_warning = True
            continue
        if after_warning and line[:1].isspace():  # the source line the warnings module prints under a warning
            continue
        after_warning = False
        kept.append(line.strip())
    exceptions = [line for line in kept if _EXCEPTION.match(line)]
    return (exceptions or kept or [""])[-1]


class WorkerProcess:
    """One worker subprocess, started on the first request and restarted after it dies or hangs.

    The worker's stderr goes to a temporary file, not a pipe: a pipe nobody reads fills up and blocks the
    worker, and the host reads stdout only. The file's tail becomes the evidence in a ``TargetError``.
    """

    def __init__(self, argv: Sequence[str], label: str, env: Mapping[str, str] | None = None) -> None:
        """Describe the worker; nothing starts yet.

        Args:
            argv: Command that runs the worker, e.g. ``[python, "worker.pyz"]``.
            label: Names the worker in error messages, e.g. ``"cpu worker"``.
            env: Environment of the worker process (the host's when None).
        """
        self._argv = list(argv)
        self._label = label
        self._env = dict(env) if env is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path: str | None = None
        self._buffer = b""

    @property
    def pid(self) -> int | None:
        """Process id of the running worker, None when none is running."""
        return self._proc.pid if self._proc is not None else None

    def request(self, request: Mapping[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one request and wait for its answer.

        Args:
            request: A JSON-serializable request object.
            timeout_s: Seconds to wait for the answer, including a start of the worker if one is needed.

        Returns:
            The worker's response, whose ``ok`` is true.

        Raises:
            TargetError: If the worker answered ``ok: false`` (it keeps running), or died, hung past
                ``timeout_s`` or wrote something that is not a JSON line (it is killed; the next request
                starts a fresh one).
        """
        deadline = time.monotonic() + timeout_s
        proc = self._start() if self._proc is None else self._proc
        assert proc.stdin is not None
        op = request.get("op")
        try:
            proc.stdin.write((json.dumps(request) + "\n").encode("utf-8"))
            proc.stdin.flush()
        except OSError:
            try:
                proc.wait(timeout=_EXIT_GRACE_S)  # the pipe broke because it is exiting: give it a moment to say how
            except subprocess.TimeoutExpired:
                pass
            self._fail(f"{self._label} {describe_exit(proc.returncode)} before reading the {op!r} request")
        line = self._read_line(proc, deadline, op)
        try:
            response = json.loads(line)
        except ValueError:
            self._fail(f"{self._label} answered {op!r} with a line that is not JSON: {line[:80]!r}")
        if not isinstance(response, dict) or "ok" not in response:
            self._fail(f"{self._label} answered {op!r} with an object lacking 'ok': {line[:80]!r}")
        if not response["ok"]:
            raise TargetError(
                f"{self._label} failed on {op!r}: {response.get('error', 'no error given')}",
                detail=str(response.get("traceback", "")),
            )
        return response

    def close(self, grace_s: float = 5.0) -> None:
        """Ask the worker to quit, kill it if it has not within ``grace_s``, and drop its log."""
        proc = self._proc
        if proc is not None:
            try:
                assert proc.stdin is not None
                proc.stdin.write(b'{"op": "quit"}\n')
                proc.stdin.close()
                proc.wait(timeout=grace_s)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._kill()
        self._remove_log()

    def _start(self) -> subprocess.Popen[bytes]:
        self._remove_log()
        # Named after this process: a host killed before it could remove the log leaves it behind, and the next
        # run removes it once this pid is provably no longer this process.
        fd, self._log_path = tempfile.mkstemp(prefix=f"compression-bench-worker-{os.getpid()}-", suffix=".log")
        os.close(fd)
        # O_APPEND: the host reads the tail through its own descriptor while the worker keeps writing.
        with open(self._log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self._argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=self._env,
            )
        self._buffer = b""
        return self._proc

    def _read_line(self, proc: subprocess.Popen[bytes], deadline: float, op: Any) -> str:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._fail(f"{self._label} timed out answering {op!r}")
                if not selector.select(remaining):
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    proc.wait()
                    self._fail(f"{self._label} {describe_exit(proc.returncode)} while answering {op!r}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8", errors="replace")

    def _fail(self, message: str) -> NoReturn:
        """Kill the worker and raise ``message`` with the tail of its stderr as evidence."""
        self._kill()
        tail = self._stderr_tail()
        last = meaningful_line(tail)
        raise TargetError(f"{message}; stderr: {last}" if last else message, detail=tail)

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass

    def _stderr_tail(self) -> str:
        if self._log_path is None:
            return ""
        try:
            with open(self._log_path, "rb") as log:
                log.seek(max(0, os.path.getsize(self._log_path) - _STDERR_TAIL_BYTES))
                text = log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        lines = [line for line in text.splitlines() if line.strip()]
        return "\n".join(lines[-_STDERR_TAIL_LINES:])

    def _remove_log(self) -> None:
        if self._log_path is not None:
            try:
                os.remove(self._log_path)
            except OSError:
                pass
            self._log_path = None
