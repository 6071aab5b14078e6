"""A metric of every stored cell across runs: one point per measured record, placed at the run that measured it.

A record a later run reused is one measurement, not two, so it appears once, at its measuring run (and commit).
Series are keyed by cell and machine: absolute latencies of one cell on two machines are two series.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from bench.errors import BenchError
from bench.history.changepoints import MIN_POINTS, Step, detect_steps
from bench.labels import short_label
from bench.records import LayersRecord, ModelRecord, Record
from bench.store.database import Measured, Run

__all__ = [
    "METRICS",
    "Metric",
    "RunInfo",
    "Point",
    "Series",
    "History",
    "Filters",
    "build_history",
    "median_interval",
    "too_short",
]

_Z95 = 1.959964
"""The 95% two-sided normal quantile: an interval of +-1.96 standard errors, or a 95% interval's half-width."""


@dataclass(frozen=True)
class Metric:
    """How one metric is read from a record, shown, and searched for change points (see bench.history.changepoints)."""

    name: str
    title: str
    unit: str
    log: bool
    min_step: float
    noise_floor: float
    read: Callable[[Record], tuple[float, float | None, float | None] | None]
    show: Callable[[float], str]

    def describe(self, step: Step) -> str:
        """The change of `step` in this metric's terms: "+12.3%" for log metrics, "-1.2 points" for top-1."""
        return f"{step.change:+.1%}" if self.log else f"{step.change:+.1f} {self.unit}"


def median_interval(samples: Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """A distribution-free interval of the median from order statistics, covering at least `level`.

    The number of samples below the true median is Binomial(n, 1/2); the interval runs from the k-th smallest to
    the k-th largest sample with k the largest rank whose lower tail stays within (1 - level) / 2. None below 6
    samples, where even the whole range covers less than 95%.
    """
    n = len(samples)
    tail, k = 0.0, 0
    for j in range(n):
        tail += math.comb(n, j) / 2**n
        if tail > (1 - level) / 2:
            break
        k = j + 1
    if k == 0:
        return None
    ordered = sorted(samples)
    return ordered[k - 1], ordered[n - k]


def _latency(record: Record) -> tuple[float, float | None, float | None] | None:
    if not isinstance(record, ModelRecord) or record.timing is None:
        return None
    interval = median_interval(record.timing.samples_s)
    low, high = interval if interval is not None else (None, None)
    return record.timing.median_s, low, high


def _speedup(record: Record) -> tuple[float, float | None, float | None] | None:
    if isinstance(record, LayersRecord):
        value = record.speedup_median
        return (value, None, None) if value is not None else None
    if record.timing is None:
        return None
    return record.timing.speedup_median, record.timing.speedup_ci_low, record.timing.speedup_ci_high


def _top1(record: Record) -> tuple[float, float | None, float | None] | None:
    if not isinstance(record, ModelRecord) or record.accuracy is None or record.accuracy.top1 is None:
        return None
    value = 100 * record.accuracy.top1
    error = record.accuracy.standard_error
    if error is None:
        return value, None, None
    return value, value - 100 * _Z95 * error, value + 100 * _Z95 * error


def _bytes(record: Record) -> tuple[float, float | None, float | None] | None:
    if not isinstance(record, ModelRecord) or record.sizes is None:
        return None
    return float(record.sizes.smallest()[1]), None, None


def _figures(value: float) -> str:
    """Three significant figures, trailing zeros kept and no exponent: 1.00, 12.5, 1234."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    return f"{value:.{max(0, 2 - math.floor(math.log10(abs(value))))}f}"


def _bytes_text(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{_figures(value / size)}{unit}"
    return f"{value:.0f}"


# Timings on a shared machine rarely repeat closer than 1% from run to run; bytes and top-1 are exact or carry
# their own binomial error. top-1's minimum step is compare's accuracy tolerance, 0.5 points.
METRICS = {
    metric.name: metric
    for metric in (
        Metric(
            "latency", "latency (candidate median, ms)", "ms", True, 0.05, 0.01, _latency, lambda v: _figures(v * 1e3)
        ),
        Metric("speedup", "speedup over the baseline (median)", "x", True, 0.05, 0.01, _speedup, lambda v: f"{v:.2f}x"),
        Metric("top1", "top-1 (%)", "points", False, 0.5, 0.0, _top1, lambda v: f"{v:.1f}"),
        Metric("bytes", "bytes (smallest real encoding)", "bytes", True, 0.05, 0.0, _bytes, _bytes_text),
    )
}


@dataclass(frozen=True)
class RunInfo:
    """A run as history shows it: its id and the commit it ran at."""

    run_id: str
    commit: str | None
    dirty: bool | None

    @property
    def short(self) -> str:
        """The 7-character commit, `+` when the tree had changes, `?` when the commit is unknown."""
        if not self.commit:
            return "?"
        return self.commit[:7] + ("+" if self.dirty else "")

    @classmethod
    def of(cls, run: Run) -> RunInfo:
        commit = run.commit.get("commit")
        dirty = run.commit.get("dirty")
        return cls(run.run_id, str(commit) if commit else None, bool(dirty) if dirty is not None else None)


@dataclass(frozen=True)
class Point:
    """One measured record: `run` indexes `History.runs`; `low`/`high` is its 95% interval (None: none)."""

    run: int
    value: float
    low: float | None
    high: float | None
    flags: tuple[str, ...]


@dataclass(frozen=True)
class Series:
    """One cell on one machine across runs, oldest first; each step's `index` indexes `points`."""

    label: str
    model: str
    points: tuple[Point, ...]
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class History:
    metric: Metric
    runs: tuple[RunInfo, ...]
    series: tuple[Series, ...]

    @property
    def columns(self) -> list[int]:
        """Indices of the runs that measured at least one point shown, in run order."""
        return sorted({point.run for series in self.series for point in series.points})


@dataclass(frozen=True)
class Filters:
    """fnmatch patterns (an exact name is one) on a record's model, compressor and target; None matches all."""

    model: str | None = None
    compressor: str | None = None
    target: str | None = None

    def match(self, record: Record) -> bool:
        pairs = ((self.model, record.model), (self.compressor, record.compressor), (self.target, record.target))
        return all(pattern is None or fnmatchcase(value, pattern) for pattern, value in pairs)


def _label(record: Record) -> str:
    prefix = "layers " if isinstance(record, LayersRecord) else ""
    return f"{record.model} | {prefix}{short_label(record)} | {record.place}"


def _errors(metric: Metric, points: Sequence[Point]) -> list[float | None]:
    """Each point's standard error in the units the change-point fit uses (of ln value for log metrics)."""
    errors: list[float | None] = []
    for point in points:
        if point.low is None or point.high is None or (metric.log and point.low <= 0):
            errors.append(None)
        elif metric.log:
            errors.append((math.log(point.high) - math.log(point.low)) / (2 * _Z95))
        else:
            errors.append((point.high - point.low) / (2 * _Z95))
    return errors


def _names(measured: Sequence[Measured]) -> str:
    parts = []
    for what, read in (("models", "model"), ("compressors", "compressor"), ("targets", "target")):
        names = sorted({getattr(m.record, read) for m in measured})
        parts.append(f"{what}: {', '.join(names)}")
    return "; ".join(parts)


def _merged_into(runs: Sequence[Run]) -> dict[str, str]:
    """Shard run id -> the merged run that holds it: a sharded matrix is one point per cell at its merged run.

    A later merged run of the same shards (one that completed a partial merge) takes them over.
    """
    merged: dict[str, str] = {}
    for run in runs:
        shards = run.config.get("merged_from")
        if isinstance(shards, list):
            merged.update({str(shard): run.run_id for shard in shards})
    return merged


def build_history(runs: Sequence[Run], measured: Sequence[Measured], metric: Metric, filters: Filters) -> History:
    """Every matching cell's series of `metric`, with its change points.

    Raises:
        BenchError: no stored record matches the filters (naming what the store has), or none of those that do
            has the metric.
    """
    if not measured:
        raise BenchError("the store has no measured cells yet; start a run with: python -m bench run")
    matching = [m for m in measured if filters.match(m.record)]
    if not matching:
        raise BenchError(f"no stored cell matches --model/--compressor/--target (the store has {_names(measured)})")
    folded = _merged_into(runs)
    runs = [run for run in runs if run.run_id not in folded]
    position = {run.run_id: index for index, run in enumerate(runs)}
    position.update({shard: position[merged] for shard, merged in folded.items()})
    grouped: dict[tuple[str, str], list[tuple[Point, Record]]] = {}
    for m in sorted(matching, key=lambda m: (position.get(m.run_id, -1), m.record_id)):
        read = metric.read(m.record) if m.record.ok and m.run_id in position else None
        if read is None:
            continue
        value, low, high = read
        if metric.log and not value > 0:
            continue  # a damaged record: a log scale has no place for it
        point = Point(position[m.run_id], value, low, high, m.record.flags)
        grouped.setdefault((m.record.cell_id, m.record.machine_id), []).append((point, m.record))
    if not grouped:
        raise BenchError(f"none of the {len(matching)} matching stored cells has a {metric.name} measurement")
    machines: dict[str, set[str]] = {}
    for cell_id, machine_id in grouped:
        machines.setdefault(cell_id, set()).add(machine_id)
    series = []
    for (cell_id, machine_id), pairs in grouped.items():
        record = pairs[-1][1]
        label = _label(record) + (f" @{machine_id[:8]}" if len(machines[cell_id]) > 1 else "")
        points = tuple(point for point, _ in pairs)
        steps = detect_steps(
            [p.value for p in points], _errors(metric, points), log=metric.log, min_step=metric.min_step,
            noise_floor=metric.noise_floor,
        )  # fmt: skip
        series.append(Series(label, record.model, points, tuple(steps)))
    series.sort(key=lambda s: (s.model, s.label))
    return History(metric, tuple(RunInfo.of(run) for run in runs), tuple(series))


def too_short(history: History) -> int:
    """How many series have too few points to be searched for change points."""
    return sum(1 for series in history.series if len(series.points) < MIN_POINTS)
