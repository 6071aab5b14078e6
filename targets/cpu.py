"""The CPU of this machine, timed by ``worker.py`` in a local subprocess."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from targets._process import WorkerProcess
from targets.base import Target
from targets.worker import PAIR_DEFAULTS

__all__ = ["CpuTarget", "WORKER_PATH"]

WORKER_PATH = Path(__file__).with_name("worker.py")
"""The worker file; the same file other targets copy to their device."""


class CpuTarget(Target):
    """Times models on this machine's CPU in a persistent worker subprocess.

    Timing in a separate process keeps the host's own state (imported libraries, allocator, threads) out of
    the measurement, and is the same protocol a remote device speaks, so local and remote numbers come from
    the same code.
    """

    def __init__(self, name: str = "cpu", python: str = sys.executable, timeout_margin_s: float = 120.0) -> None:
        """Describe the target; the worker starts on the first request.

        Args:
            name: The target's registered name, recorded with each measurement.
            python: Interpreter that runs the worker; it needs torch.
            timeout_margin_s: Seconds allowed beyond a request's own time budget, for starting the worker
                (importing torch), loading artifacts and calibration; also the whole timeout of ``info``.
        """
        self.name = name
        self._python = python
        self._timeout_margin_s = timeout_margin_s
        self._worker = WorkerProcess(
            [python, str(WORKER_PATH)],
            label=f"{name} worker",
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._machine_info: dict[str, Any] | None = None

    @property
    def pid(self) -> int | None:
        """Process id of the running worker, None when none is running."""
        return self._worker.pid

    def available(self) -> tuple[bool, str]:
        """Whether the worker's interpreter and file exist (torch itself is checked by the first request)."""
        if shutil.which(self._python) is None:
            return False, f"python interpreter not found or not executable: {self._python}"
        if not WORKER_PATH.is_file():
            return False, f"worker file missing: {WORKER_PATH}"
        return True, ""

    def machine_info(self) -> dict[str, Any]:
        """The worker's ``info`` answer, asked once and cached (the machine does not change under us)."""
        if self._machine_info is None:
            response = self._worker.request({"op": "info"}, timeout_s=self._timeout_margin_s)
            self._machine_info = response["machine"]
        return self._machine_info

    def time_pairs(self, pairs: list[dict[str, Any]], threads: int) -> list[dict[str, Any]]:
        """Time artifact pairs in the worker; see ``Target.time_pairs``.

        The answer may take each pair's budget twice over (``min_rounds`` can outlast the budget, and
        warm-up and calibration come on top), so the timeout is that plus ``timeout_margin_s``.
        """
        timeout_s = self._timeout_margin_s
        for pair in pairs:
            options = {**PAIR_DEFAULTS, **pair}
            timeout_s += 2 * (options["budget_s"] + options["warmup_s"])
        response = self._worker.request({"op": "time", "threads": threads, "pairs": pairs}, timeout_s)
        return response["results"]

    def close(self) -> None:
        """Stop the worker; a later request starts a new one."""
        self._worker.close()
