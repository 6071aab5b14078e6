"""Facts about the host and the code that produced a run, stored with it (pyperf/pytest-benchmark style)."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

import psutil

__all__ = ["host_fingerprint", "commit_fingerprint", "other_cpu_cores_now"]


def other_cpu_cores_now(interval_s: float = 0.5) -> float:
    """Cores' worth of CPU used by other processes over `interval_s` (this process is idle while sampling)."""
    percent = psutil.cpu_percent(interval=interval_s)
    return percent / 100.0 * (psutil.cpu_count() or 1)


def host_fingerprint() -> dict[str, Any]:
    """The machine running the suite (targets report the machine that times)."""
    memory = psutil.virtual_memory()
    freq = psutil.cpu_freq()
    return {
        "hostname": platform.node(),
        "arch": platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu_count_logical": psutil.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "cpu_freq_mhz": freq.current if freq else None,
        "memory_bytes": memory.total,
        "load_average": list(psutil.getloadavg()),
    }


def commit_fingerprint() -> dict[str, Any]:
    """The suite's git commit and whether the work tree had changes, when it runs from a clone."""
    root = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}
