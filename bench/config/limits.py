"""How much of this machine one cell's host work may take before the run stops it (`bench.run.isolation`).

The host work of a cell (build the reference, compress, recover, export, evaluate) runs in a process of its own,
watched by the run: past `cell_memory_gb` of resident memory or `cell_timeout_s` in one step, that process is
killed, the cell is recorded `failed` with the limit it hit, and the run goes on. The defaults fit the machine the
run starts on: half its memory, so one runaway library cannot take the rest of the machine (and the run) with it,
and half an hour per step, far beyond any step of the default matrix and short enough that a hang is caught.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil

from bench.config.checks import MAX_SECONDS, is_number
from bench.errors import require

__all__ = ["LimitsConfig", "GB", "MACHINE_MEMORY_GB", "DEFAULT_CELL_MEMORY_GB", "DEFAULT_CELL_TIMEOUT_S"]

GB = 1e9
MACHINE_MEMORY_GB = psutil.virtual_memory().total / GB
DEFAULT_CELL_MEMORY_GB = round(MACHINE_MEMORY_GB / 2, 1)
DEFAULT_CELL_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class LimitsConfig:
    """The limits on one cell's host work: resident memory of the host process, and seconds in one step of it."""

    cell_memory_gb: float = DEFAULT_CELL_MEMORY_GB
    cell_timeout_s: float = DEFAULT_CELL_TIMEOUT_S

    def __post_init__(self) -> None:
        require(
            is_number(self.cell_memory_gb) and 0 < self.cell_memory_gb <= MACHINE_MEMORY_GB,
            f"limits.cell_memory_gb must be a number of GB in (0, {MACHINE_MEMORY_GB:.1f}] (this machine's memory),"
            f" got {self.cell_memory_gb!r}",
        )
        require(
            is_number(self.cell_timeout_s) and 0 < self.cell_timeout_s <= MAX_SECONDS,
            f"limits.cell_timeout_s must be a number of seconds in (0, {MAX_SECONDS:g}], got {self.cell_timeout_s!r}",
        )
