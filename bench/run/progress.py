"""Progress of a run on stderr: cells done, the cell being measured, elapsed time and an ETA."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import NamedTuple, TextIO

from bench.records import LayersRecord, ModelRecord, Record
from bench.run.matrix import Cell

__all__ = ["Eta", "Progress", "format_duration"]


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Eta(NamedTuple):
    """The time the cells ahead should take; `lower_bound` when some of them are of a kind none was measured of."""

    seconds: float
    lower_bound: bool

    def text(self) -> str:
        return f"ETA {'>= ' if self.lower_bound else ''}{format_duration(self.seconds)}"


class Progress:
    """One line per finished cell; on a terminal, a live line for the cell being measured.

    The ETA is the sum, over the cells not finished yet (the one being measured included), of the mean time of the
    cells measured so far that are most like it: of its kind and model when one such cell was measured (a resnet18
    cell costs as much as many mnist_cnn ones), else of its kind, else of every kind. Kinds differ most: a
    layer-level cell takes ~24 s where a model cell takes a few, and one mean over all cells missed 2 minutes of a
    default run's last 3. While some kind ahead has no measured cell yet, its cells are counted at the overall mean,
    which is all the run knows, and the ETA shows as a lower bound (``ETA >= ...``).

    The mean, not the median: the ETA is a sum, and the first measured cell of each compressed model also pays
    its preparation (compression, fine-tuning, export), real time that each group ahead will pay again; a median
    would drop it as an outlier and underestimate. Failed and skipped cells measured now count as measured: their
    time was spent, and the cells ahead of the same model and kind are likely to end alike.

    Reused cells (answered by the store, in no time) feed no mean, so a resumed run's estimate of the cells it
    will measure is not pulled down by those it skipped. Which cells ahead will be reused is not known before they
    are reached, so the estimate assumes every cell ahead is measured: it is high by the reused ones' share.
    """

    def __init__(self, cells: Sequence[Cell], stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = len(cells)
        self.stream = stream
        self._clock = clock
        self._started = clock()
        self._finished = 0
        # Cells not finished yet, by (kind, model): what the ETA estimates.
        self._ahead: Counter[tuple[str, str]] = Counter((cell.kind, cell.model) for cell in cells)
        # Seconds and count of the measured cells, by (kind, model), (kind,) and () for all of them.
        self._spent_s: dict[tuple[str, ...], float] = {}
        self._measured: Counter[tuple[str, ...]] = Counter()
        self._live = stream.isatty()

    def _prefix(self) -> str:
        width = len(str(self.total))
        return f"[{self._finished:>{width}}/{self.total}]"

    def _mean_s(self, key: tuple[str, ...]) -> float | None:
        count = self._measured[key]
        return self._spent_s[key] / count if count else None

    def eta(self) -> Eta | None:
        """The time left (see the class): None while cells are ahead and none was measured."""
        overall = self._mean_s(())
        seconds, lower_bound = 0.0, False
        for (kind, model), count in self._ahead.items():
            if not count:
                continue
            mean = self._mean_s((kind, model))
            if mean is None:
                mean = self._mean_s((kind,))
            if mean is None:
                if overall is None:
                    return None
                mean, lower_bound = overall, True
            seconds += mean * count
        return Eta(seconds, lower_bound)

    def _eta_text(self) -> str:
        eta = self.eta()
        return "ETA ?" if eta is None else eta.text()

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
        key = (cell.kind, cell.model)
        if self._ahead[key] > 0:
            self._ahead[key] -= 1
        if record is not None:
            for group in (key, (cell.kind,), ()):
                self._spent_s[group] = self._spent_s.get(group, 0.0) + (record.elapsed_s or 0.0)
                self._measured[group] += 1
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
