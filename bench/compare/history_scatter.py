"""Each cell's own run-to-run scatter, estimated from the stored history of earlier runs of the same cell.

The cross-cell scatter (`bench.compare.scatter`) raises the limit of every cell alike, but cells do not scatter
alike: one (a short timing, a kernel sensitive to where its memory landed) may move between runs of one commit
by several percent while its neighbours move by a fraction of one. A 6% move is news for a quiet cell and routine
for a restless one; the within-run samples of either cannot say which it is, the cell's own past can.

Each cell's history is a series of its trusted timings (ok, unflagged model records, oldest first). Its scatter is
estimated from the differences of consecutive log values, d_i = log x_(i+1) - log x_i, rather than from the spread
of the values around their mean: a level shift that the checks below cannot see (a torch upgrade, a kernel fix)
would inflate the spread of the values for every later comparison, but it spoils only the one difference across
it (von Neumann's successive differences). If each run adds an independent error of sigma to the log value, a
difference has sigma * sqrt(2), hence

    sigma = 1.4826 * median(|d_i - median(d)|) / sqrt(2)

with the median absolute deviation (x 1.4826, the normal's sigma) made robust to the differences that are not
noise: up to half of them may be a real change the checks below miss or an outlier run (which spoils the two
differences around it). The median of a handful of deviations is coarse, so a cell needs `MIN_STEPS` differences
for an estimate; simulated on normal noise, at 4 steps the estimate averages 0.84 sigma with a spread of 0.5 sigma
(its 95th percentile 1.8 sigma), at 8 steps 0.96 with 0.42. Centring on the median of the differences rather than
on their known centre 0 is what makes it err low (centred on 0 it averages 1.12 sigma at 4 steps, 95th percentile
2.2): the history may only raise a cell's limit, so an estimate that errs low leaves the comparison's own limit in
force and a real change is still called, while one that erred high would hide it.

What counts as one step of the series:
- only the same cell: a step is skipped when its bytes (`sizes`) differ, since they are deterministic and a change
  means the compressed model changed, or when its `params` or `engine` differ;
- latency only between records of one machine (`machine_id`): another machine's latency is another quantity. A
  speedup is measured within a run, so it is compared across machines, as a comparison does;
- a record a later run reused (identical stored JSON, `bench.records.record_json`) is one measurement: the step
  between the two copies is skipped.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.compare.scatter import Scatter
from bench.compare.sources import Side, from_store
from bench.errors import BenchError
from bench.records import ModelRecord, record_json

__all__ = ["MIN_STEPS", "TIMING_METRICS", "CellKey", "estimate_history", "history_note", "load_history"]

MIN_STEPS = 4
TIMING_METRICS = ("latency", "speedup")
_MAD_TO_SIGMA = 1.4826

CellKey = tuple[str, str]
"""What matches a cell across runs: its cell id and target (as `compare_runs` matches them)."""


def _trusted(record: object) -> ModelRecord | None:
    """The record when it is an ok model record with an unflagged timing (as `scatter.trusted_pair` asks)."""
    if not (isinstance(record, ModelRecord) and record.ok and record.timing is not None and not record.flags):
        return None
    return record


def _same_cell(before: ModelRecord, after: ModelRecord) -> bool:
    return before.sizes == after.sizes and before.params == after.params and before.engine == after.engine


def _value(record: ModelRecord, metric: str) -> float:
    assert record.timing is not None
    return record.timing.median_s if metric == "latency" else record.timing.speedup_median


def _steps(series: Sequence[tuple[ModelRecord, dict[str, Any]]], metric: str) -> list[float]:
    """The log differences of `metric` between consecutive records of one cell that measured the same thing."""
    steps = []
    for (before, before_json), (after, after_json) in zip(series, series[1:], strict=False):
        if before_json == after_json or not _same_cell(before, after):
            continue
        if metric == "latency" and before.machine_id != after.machine_id:
            continue
        steps.append(math.log(_value(after, metric) / _value(before, metric)))
    return steps


def _sigma(steps: Sequence[float]) -> float:
    centre = statistics.median(steps)
    return _MAD_TO_SIGMA * statistics.median(abs(step - centre) for step in steps) / math.sqrt(2.0)


def estimate_history(runs: Iterable[Side]) -> dict[CellKey, dict[str, Scatter]]:
    """Each cell's run-to-run scatter of latency and speedup in `runs` (oldest first), where it has enough steps.

    Returns:
        cell key -> metric -> `Scatter` (the sigma of the log value between runs; its `cells` counts the steps it
        was estimated from). A cell or metric with fewer than `MIN_STEPS` usable steps is absent.
    """
    series: dict[CellKey, list[tuple[ModelRecord, dict[str, Any]]]] = {}
    for side in runs:
        for record in side.records:
            trusted = _trusted(record)
            if trusted is not None:
                series.setdefault((trusted.cell_id, trusted.target), []).append((trusted, record_json(trusted)))
    found: dict[CellKey, dict[str, Scatter]] = {}
    for key, records in series.items():
        for metric in TIMING_METRICS:
            steps = _steps(records, metric)
            if len(steps) >= MIN_STEPS:
                found.setdefault(key, {})[metric] = Scatter(metric, _sigma(steps), len(steps))
    return found


def history_note(raised: Mapping[str, Scatter], threshold: float) -> str:
    """Why a cell's limits are higher than the comparison's: its own scatter, and the limits it set."""
    steps = {s.cells for s in raised.values()}
    each = len(steps) > 1  # latency may have fewer steps than speedup (machines changed between runs)
    parts = ", ".join(
        f"{s.metric} +-{math.exp(s.sigma) - 1:.1%}" + (f" ({s.cells} steps)" if each else "") for s in raised.values()
    )
    limits = ", ".join(f"{s.limit(threshold):.1%} in {s.metric}" for s in raised.values())
    counted = "" if each else f" ({steps.pop()} steps)"
    return f"its own run-to-run scatter in earlier runs{counted}: {parts}; changes count beyond {limits}"


def load_history(paths: Sequence[Path], machine_kind_filter: Callable[[Side], bool] | None = None) -> list[Side]:
    """The newest run of each store in `paths`, oldest first by the time it started, for `estimate_history`.

    Made for the CI gate's kept runs (`data/KIND/runs/*.sqlite`, one run per file, one machine kind per folder).
    A store that cannot be read is left out with a warning: the history only refines the limits, so a damaged kept
    run must not stop the comparison it serves.

    Args:
        paths: store files; each gives its newest run.
        machine_kind_filter: keeps only the runs it accepts (say, those of one machine kind when the stores mix
            kinds); None keeps every run.
    """
    sides = []
    for path in paths:
        try:
            side = from_store(path, None, f"history {path}")
        except BenchError as error:
            print(f"warning: {error}; left out of the history", file=sys.stderr)
            continue
        if machine_kind_filter is None or machine_kind_filter(side):
            sides.append(side)
    return sorted(sides, key=lambda side: (side.run.started_at, side.run.run_id))
