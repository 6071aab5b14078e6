"""A run's scratch folder, named after the run and owned by its process, and the sweep of what dead runs left.

A run killed with SIGKILL (or by the OOM killer, or a power cut) runs no cleanup: its `runs` row stays
`running`, and its scratch folder (baseline and candidate TorchScript files, megabytes per model) and its timing
workers' logs stay in the temporary folder. The next run cleans up after it, and only after it: every leftover is
attributed to an owner process (pid, start time, host), and is removed only when that owner is provably gone. A
pid alone is not proof, since pids are recycled; the pid together with the process's start time is. An owner on
another host cannot be checked from here, so its leftovers (a store or a temporary folder on a shared disk) are
left alone.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.store.database import Store

__all__ = ["OWNER_FILE", "SCRATCH_PREFIX", "Owner", "SweepReport", "owner_alive", "scratch_folder", "sweep_dead_runs"]

SCRATCH_PREFIX = "bench-"
OWNER_FILE = "owner.json"
# targets/_process.py names each worker's log after the process that started it, for the sweep to attribute it.
_WORKER_LOG = re.compile(r"compression-bench-worker-(\d+)-.*\.log")
# psutil derives a start time from the boot time and clock ticks; two reads for one process can differ by
# rounding, while a recycled pid belongs to a process started long after the first one died.
_START_TIME_TOLERANCE_S = 1.0


@dataclass(frozen=True)
class Owner:
    """The process that owns a run: what tells it apart from any later process that reuses its pid."""

    pid: int
    create_time: float
    hostname: str
    run_id: str

    @classmethod
    def current(cls, run_id: str) -> Owner:
        """This process, as the owner of `run_id`."""
        pid = os.getpid()
        return cls(pid, psutil.Process(pid).create_time(), platform.node(), run_id)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _process_start(pid: int) -> float | None:
    """Start time of the live process `pid`; None when there is none (a zombie is gone: it runs nothing).

    Raises:
        psutil.AccessDenied: the process exists but cannot be inspected.
    """
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except psutil.NoSuchProcess:
        return None


def owner_alive(pid: int, create_time: float, hostname: str) -> bool:
    """Whether the owner may still be running: True unless it is provably gone.

    It is gone when it ran on this host and no live process has its pid, or the one that has it started at
    another time (the pid was recycled). An owner on another host, or a process this user may not inspect,
    counts as alive.
    """
    if hostname != platform.node():
        return True
    try:
        started = _process_start(pid)
    except psutil.AccessDenied:
        return True
    return started is not None and abs(started - create_time) <= _START_TIME_TOLERANCE_S


def _log_owner_alive(pid: int, last_written: float) -> bool:
    """Whether the process `pid` that named a worker log may still own it.

    A log carries only its owner's pid: the live process with that pid is the owner if it started before the
    log's last write (a pid belongs to one live process at a time), and a recycled pid started after the owner
    died, hence after its last write.
    """
    try:
        started = _process_start(pid)
    except psutil.AccessDenied:
        return True
    return started is not None and started <= last_written + _START_TIME_TOLERANCE_S


@contextmanager
def scratch_folder(owner: Owner, parent: Path | None = None) -> Iterator[Path]:
    """The run's scratch folder `bench-<run_id>` with its `owner.json`, removed when the block ends.

    The owner file is written to a temporary name and renamed, so a sweep never reads half of one; a folder
    without it (being made, or left by an older version) is never swept.
    """
    folder = Path(parent or tempfile.gettempdir()) / f"{SCRATCH_PREFIX}{owner.run_id}"
    folder.mkdir(parents=True)
    try:
        partial = folder / f".{OWNER_FILE}.partial"
        partial.write_text(json.dumps(owner.to_json()))
        partial.replace(folder / OWNER_FILE)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class SweepReport:
    """What a sweep did: the dead runs it found (marked interrupted, or only cleaned up) and the bytes removed."""

    interrupted: list[str] = field(default_factory=list)
    dead_runs: set[str] = field(default_factory=set)
    folders: int = 0
    logs: int = 0
    removed_bytes: int = 0

    def line(self) -> str | None:
        """One line for the run's stream, or None when there was nothing to sweep."""
        if not self.dead_runs and not self.logs:
            return None
        runs = len(self.dead_runs)
        done = []
        if self.interrupted:
            done.append(
                "marked interrupted" if len(self.interrupted) == runs else f"{len(self.interrupted)} marked interrupted"
            )
        done.append(f"removed {self.removed_bytes / 1e6:.1f} MB of temporary files")
        counted = _count(runs, "dead run") if runs else "dead runs"
        return (
            f"swept {counted}: {', '.join(done)} ({_count(self.folders, 'folder')}, {_count(self.logs, 'worker log')})"
        )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _folder_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += (Path(root) / name).stat().st_size
            except OSError:
                pass  # removed meanwhile
    return total


def _read_owner(folder: Path) -> Owner | None:
    try:
        data = json.loads((folder / OWNER_FILE).read_text())
        return Owner(int(data["pid"]), float(data["create_time"]), str(data["hostname"]), str(data["run_id"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def sweep_dead_runs(store: Store, parent: Path | None = None) -> SweepReport:
    """Mark the store's runs whose owner is gone as interrupted, and remove what dead owners left in `parent`.

    Args:
        store: Its `running` runs are checked; runs recorded without an owner (by an older version) are left.
        parent: The temporary folder scratch folders and worker logs live in (the system's when None).

    Returns:
        What was swept.
    """
    report = SweepReport()
    for run in store.running_runs():
        if run["pid"] is None or owner_alive(run["pid"], run["create_time"], run["hostname"]):
            continue
        if store.mark_interrupted(run["run_id"]):
            report.interrupted.append(run["run_id"])
            report.dead_runs.add(run["run_id"])
    root = Path(parent or tempfile.gettempdir())
    try:
        entries = list(root.iterdir())
    except OSError:
        return report
    for entry in entries:
        if entry.name.startswith(SCRATCH_PREFIX) and entry.is_dir() and not entry.is_symlink():
            owner = _read_owner(entry)
            if owner is None or owner_alive(owner.pid, owner.create_time, owner.hostname):
                continue
            size = _folder_bytes(entry)
            shutil.rmtree(entry, ignore_errors=True)
            if not entry.exists():
                report.folders += 1
                report.removed_bytes += size
                report.dead_runs.add(owner.run_id)
        elif (match := _WORKER_LOG.fullmatch(entry.name)) and entry.is_file() and not entry.is_symlink():
            try:
                last_written = entry.stat().st_mtime
                if _log_owner_alive(int(match[1]), last_written):
                    continue
                size = entry.stat().st_size
                entry.unlink()
            except OSError:
                continue  # removed by a concurrent sweep
            report.logs += 1
            report.removed_bytes += size
    return report
