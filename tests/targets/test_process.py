"""A worker that crashes: the error names the signal and the stderr line that says why, never a trailing warning."""

from __future__ import annotations

import os
import sys

import pytest

from targets import CpuTarget, TargetError
from targets._process import WorkerProcess, describe_exit, meaningful_line

# A deprecation printed by the warnings module, exactly as Python writes it: "file:line: Category: text" and the
# indented source line under it.
_WARN = "import warnings; warnings.warn('the old API is deprecated', FutureWarning, stacklevel=1)"


def _worker(body: str) -> WorkerProcess:
    """A worker whose program is `body`: it reads the request line, then does what the body says."""
    return WorkerProcess([sys.executable, "-c", f"import sys; sys.stdin.readline()\n{body}"], label="cpu worker")


def _fail_with(body: str) -> TargetError:
    worker = _worker(body)
    try:
        with pytest.raises(TargetError) as info:
            worker.request({"op": "time"}, timeout_s=60)
    finally:
        worker.close()
    return info.value


def test_a_worker_killed_by_sigkill_after_a_warning_names_the_signal_not_the_warning() -> None:
    error = _fail_with(f"{_WARN}\nimport os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    message = str(error)
    assert message == "cpu worker was killed by SIGKILL (signal 9) while answering 'time'"
    assert "FutureWarning" in error.detail  # the evidence keeps the whole tail


def test_a_crash_names_the_exception_even_when_a_warning_comes_after_it() -> None:
    body = (
        "import traceback\n"
        "try:\n    raise RuntimeError('CUDA error: device-side assert triggered')\n"
        "except RuntimeError:\n    traceback.print_exc()\n"
        f"{_WARN}\n"
        "sys.stderr.write('\\n\\n'); sys.stderr.flush(); sys.exit(3)"
    )
    message = str(_fail_with(body))
    assert message == (
        "cpu worker exited with code 3 while answering 'time';"
        " stderr: RuntimeError: CUDA error: device-side assert triggered"
    )


def test_memory_error_is_the_line_reported() -> None:
    message = str(_fail_with(f"{_WARN}\nraise MemoryError"))
    assert message.startswith("cpu worker exited with code 1 while answering 'time'")
    assert message.endswith("; stderr: MemoryError")


def test_without_an_exception_the_last_line_that_is_no_warning_is_reported() -> None:
    body = f"sys.stderr.write('worker: out of shared memory\\n'); sys.stderr.flush()\n{_WARN}\nsys.exit(1)"
    assert str(_fail_with(body)).endswith("; stderr: worker: out of shared memory")


@pytest.mark.parametrize(
    ("stderr", "line"),
    [
        ("/x/y.py:3: UserWarning: beta\n  warnings.warn(\n", ""),
        (
            'Traceback (most recent call last):\n  File "w.py", line 1\ntorch.OutOfMemoryError: CUDA out of memory\n\n',
            "torch.OutOfMemoryError: CUDA out of memory",
        ),
        ("starting\n/x/y.py:3: DeprecationWarning: old\n  return f(\n", "starting"),
        ("KeyboardInterrupt\n", "KeyboardInterrupt"),
    ],
)
def test_meaningful_line(stderr: str, line: str) -> None:
    assert meaningful_line(stderr) == line


@pytest.mark.parametrize(
    ("code", "words"),
    [(-9, "was killed by SIGKILL (signal 9)"), (-15, "was killed by SIGTERM (signal 15)"), (1, "exited with code 1")],
)
def test_describe_exit(code: int, words: str) -> None:
    assert describe_exit(code) == words


def test_more_threads_than_the_device_has_cores_fail_the_request_naming_both(make_pair) -> None:
    cores = os.cpu_count() or 1
    with CpuTarget() as target:
        with pytest.raises(TargetError) as info:
            target.time_pairs([make_pair("fast", "slow")], threads=cores + 1)
    assert str(info.value) == (
        f"cpu: {cores + 1} threads asked for, but the device has {cores} logical cores (accepted: 1..{cores})"
    )
