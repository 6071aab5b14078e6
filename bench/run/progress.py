"""Progress of a run on stderr: cells done, the cell being measured, elapsed time and an ETA."""

from __future__ import annotations

import time
from typing import TextIO

from bench.records import LayersRecord, ModelRecord, Record
from bench.run.matrix import Cell

__all__ = ["Progress", "format_duration"]


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """One line per finished cell; on a terminal, a live line for the cell being measured.

    The ETA is the mean time of the cells measured so far times the cells left; reused cells cost nothing and
    are not counted, so the ETA of a resumed run is not inflated by the cells it skips.
    """

    def __init__(self, total: int, stream: TextIO, clock=time.monotonic) -> None:
        self.total = total
        self.stream = stream
        self._clock = clock
        self._started = clock()
        self._finished = 0
        self._measured_s: list[float] = []
        self._live = stream.isatty()

    def _prefix(self) -> str:
        width = len(str(self.total))
        return f"[{self._finished:>{width}}/{self.total}]"

    def eta_s(self) -> float | None:
        if not self._measured_s:
            return None
        return sum(self._measured_s) / len(self._measured_s) * (self.total - self._finished)

    def _eta_text(self) -> str:
        eta = self.eta_s()
        return "ETA ?" if eta is None else f"ETA {format_duration(eta)}"

    def start(self, cell: Cell) -> None:
        elapsed = format_duration(self._clock() - self._started)
        line = f"{self._prefix()} {elapsed} elapsed, {self._eta_text()} | measuring {cell.label}"
        if self._live:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self, cell: Cell, record: Record | None) -> None:
        """One cell finished: measured now (`record`), or answered by a record already stored (None)."""
        self._finished += 1
        if record is not None:
            self._measured_s.append(record.elapsed_s or 0.0)
        status = "cached" if record is None else record.status
        detail = "" if record is None else _detail(record)
        line = f"{self._prefix()} {status:<7} {cell.label}{detail} | {self._eta_text()}"
        self.stream.write(("\r\033[K" if self._live else "") + line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        self.stream.write(("\r\033[K" if self._live else "") + text + "\n")
        self.stream.flush()


def _detail(record: Record) -> str:
    if not record.ok:
        return f" | {record.error or ''}"
    low = high = None
    if isinstance(record, ModelRecord) and record.timing is not None:
        speedup, low, high = record.timing.speedup_median, record.timing.speedup_ci_low, record.timing.speedup_ci_high
    elif isinstance(record, LayersRecord) and record.speedup_median is not None:
        speedup = record.speedup_median
    else:
        return ""
    interval = f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else ""
    flags = ["busy machine" if flag == "busy" else flag for flag in record.flags if flag != "noisy"]
    busy = f" ({', '.join(flags)})" if flags else ""
    return f" | speedup {speedup:.2f}x{interval}{busy} in {format_duration(record.elapsed_s or 0)}"
