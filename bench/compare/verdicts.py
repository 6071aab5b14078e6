"""One cell of two runs, judged: each metric by `bench.compare.metrics`, then one verdict for the cell.

The status of the two sides decides first, and every pair of statuses has a stated verdict:

| BASE \\ CAND   | ok                  | failed                         | skipped                      | absent |
|---------------|---------------------|--------------------------------|------------------------------|--------|
| ok            | by the metrics      | failed (a regression)          | gone (skipped now: says why) | gone   |
| failed        | improved (fixed)    | failed (as before: not new)    | gone                         | gone   |
| skipped       | new                 | failed (a regression)          | unchanged (not a regression) | gone   |
| absent        | new                 | failed (a regression)          | new                          | -      |

A candidate failure that BASE did not have is a regression in every metric (the cell measures nothing any more),
so it fails a comparison whatever `--fail-on` names. Between two ok records the verdict is `regressed` when any
metric regressed (a bytes regression counts even when the timing is inconclusive), else `inconclusive` when a timing
metric is, else `improved` when any metric improved, else `unchanged`. The same stored record on both sides (a run
that reused the other's cell) is one measurement, unchanged by construction, whatever its flags.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bench.compare import metrics
from bench.compare.metrics import MetricChange, flagged_note
from bench.compare.rules import METRICS, Rules
from bench.records import Record, record_json

__all__ = [
    "CellComparison", "compare_cell", "cell_label", "judged", "inconclusive_line", "NOT_REMEASURED", "UNDECIDED",
]  # fmt: skip

# How a cell's note begins when a paired re-measure (`bench.compare.remeasure`) could not be made, or decided
# nothing; the text up to the next colon is the reason the INCONCLUSIVE line counts.
NOT_REMEASURED = "not re-measured: "
UNDECIDED = "re-measure undecided: "


def cell_label(record: Record) -> str:
    """model | variant | place, as the tables show a cell."""
    shown = " ".join(f"{key}={value}" for key, value in sorted(record.params.items()) if value is not None)
    variant = f"{'layers ' if record.kind == 'layers' else ''}{record.compressor} {shown}".strip()
    return f"{record.model} | {variant} | {record.place}"


@dataclass(frozen=True)
class CellComparison:
    """The verdict on one cell (`bench.compare.rules.VERDICTS`), per-metric changes and why.

    `regressed` names the metrics that regressed (all of them for a new failure); `metrics` is empty unless both
    sides were measured.
    """

    label: str
    verdict: str
    base: Record | None
    cand: Record | None
    metrics: Mapping[str, MetricChange] = field(default_factory=dict)
    regressed: frozenset[str] = frozenset()
    why: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """What matches a cell across runs: its cell id and target."""
        record = self.cand if self.cand is not None else self.base
        assert record is not None
        return record.cell_id, record.target

    @property
    def cross_machine(self) -> bool:
        return self.base is not None and self.cand is not None and self.base.machine_id != self.cand.machine_id

    def regressed_in(self, fail_on: Iterable[str]) -> bool:
        """Whether the cell regressed in any of the metrics `fail_on` names."""
        return bool(self.regressed & set(fail_on))


def _error(record: Record) -> str:
    return (record.error or "no error recorded").splitlines()[0]


def _by_status(base: Record | None, cand: Record | None, label: str) -> CellComparison | None:
    """The verdict that the two sides' statuses alone decide, or None when both are ok."""
    if cand is not None and cand.status == "failed":
        if base is not None and base.status == "failed":
            return CellComparison(label, "failed", base, cand, why=f"failed on both sides (not new): {_error(cand)}")
        return CellComparison(label, "failed", base, cand, regressed=frozenset(METRICS), why=_error(cand))
    if base is None or (cand is not None and base.status == "skipped" and cand.status == "ok"):
        why = f"skipped in BASE: {_error(base)}" if base is not None else "only in CAND"
        return CellComparison(label, "new", base, cand, why=why)
    if cand is None:
        return CellComparison(label, "gone", base, cand, why="only in BASE")
    if cand.status == "skipped":
        if base.status == "skipped":
            return CellComparison(label, "unchanged", base, cand, why="skipped on both sides (not a regression)")
        return CellComparison(label, "gone", base, cand, why=f"skipped in CAND: {_error(cand)}")
    if base.status == "failed":
        return CellComparison(label, "improved", base, cand, why=f"fixed: failed in BASE ({_error(base)})")
    return None


def compare_cell(
    base: Record | None, cand: Record | None, rules: Rules, shared_reference: float | None = None
) -> CellComparison:
    """Judge one cell: `base` and `cand` are its records in the two runs (None where a run lacks it).

    `shared_reference`: how far the reference model moved in the comparison's median cell of that model
    (`bench.compare.metrics.latency`); None when unknown.

    Raises:
        ValueError: both are None.
    """
    if base is None and cand is None:
        raise ValueError("compare_cell needs a record on at least one side")
    label = cell_label(cand if cand is not None else base)  # type: ignore[arg-type]
    decided = _by_status(base, cand, label)
    if decided is not None:
        return decided
    assert base is not None and cand is not None
    changes = {
        "latency": metrics.latency(base, cand, rules, shared_reference),
        "speedup": metrics.speedup(base, cand, rules),
        "accuracy": metrics.accuracy(base, cand, rules),
        "size": metrics.size(base, cand),
    }
    if record_json(base) == record_json(cand):
        same = {name: _same(change) for name, change in changes.items()}
        return CellComparison(label, "unchanged", base, cand, same, why="same record on both sides")
    notes = [change.note for change in changes.values() if change.note]
    flagged = flagged_note(base, cand)
    if flagged and f"latency {flagged}" in notes and f"speedup {flagged}" in notes:
        notes = [f"timing {flagged}"] + [n for n in notes if n not in (f"latency {flagged}", f"speedup {flagged}")]
    if base.machine_id != cand.machine_id:
        notes.append("other machine: speedups only")
    return judged(label, base, cand, changes, notes)


def judged(
    label: str, base: Record, cand: Record, changes: Mapping[str, MetricChange], notes: Iterable[str]
) -> CellComparison:
    """The verdict of two ok records from their metrics' outcomes: regressed when any metric regressed, else
    inconclusive when a timing metric is, else improved when any improved, else unchanged."""
    outcomes = {change.outcome for change in changes.values()}
    regressed = frozenset(name for name, change in changes.items() if change.outcome == "regressed")
    verdict = next((v for v in ("regressed", "inconclusive", "improved") if v in outcomes), "unchanged")
    return CellComparison(label, verdict, base, cand, changes, regressed, "; ".join(notes))


def _same(change: MetricChange) -> MetricChange:
    outcome = "n/a" if change.outcome == "n/a" else "unchanged"
    return MetricChange(change.metric, outcome, change.shown, "", change.value, change.low, change.high)


def inconclusive_line(cells: Sequence[CellComparison], max_share: float) -> str | None:
    """`INCONCLUSIVE: k of n cells could not be judged on this machine (why)` when more than `max_share` of the
    cells measured on both sides are inconclusive; None otherwise. A gate that judged nothing must not pass."""
    measured = [cell for cell in cells if cell.metrics]
    stuck = [cell for cell in measured if cell.verdict == "inconclusive"]
    if not stuck or len(stuck) <= max_share * len(measured):
        return None
    reasons = Counter(_reason(cell) for cell in stuck)
    why = ", ".join(f"{count} {reason}" for reason, count in reasons.most_common())
    return f"INCONCLUSIVE: {len(stuck)} of {len(measured)} cells could not be judged on this machine ({why})"


def _reason(cell: CellComparison) -> str:
    """Why a cell stayed inconclusive, in a few words."""
    for note in cell.why.split("; "):
        if note.startswith(NOT_REMEASURED):
            return "not re-measured, " + note.removeprefix(NOT_REMEASURED).split(":", 1)[0]
        if note.startswith(UNDECIDED):
            return "re-measured without a decision"
    flagged = flagged_note(cell.base, cell.cand) if cell.base is not None and cell.cand is not None else ""
    if flagged:
        return f"timing flagged {flagged.split(' in ')[0]}, not re-measured"
    return "timing drifted, not re-measured"
