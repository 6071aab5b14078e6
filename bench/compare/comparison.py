"""Two runs, cell by cell: match the cells, judge each, and say which machines were compared.

Cells are matched by cell id and target (a cell id already names its target; the target keeps a cell measured on
two targets apart should ids ever be reused). Records of different machines are compared by their within-run
speedups only, and the comparison carries one note naming the machines, which the CLI prints as a warning.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bench.compare.history_scatter import CellKey, estimate_history, history_note
from bench.compare.rules import VERDICTS, Rules
from bench.compare.scatter import Scatter, estimate_scatter, trusted_pair
from bench.compare.sources import Side
from bench.compare.verdicts import CellComparison, compare_cell, inconclusive_line
from bench.errors import BenchError
from bench.records import Record

__all__ = ["Comparison", "compare_runs", "machine_text"]


@dataclass(frozen=True)
class Comparison:
    """Every matched cell of two runs, judged; `machine_note` is set when they ran on different machines.

    `scatter` holds the run-to-run scatter of latency and speedup estimated from the cells (where enough were
    trusted); `rules` are the rules the cells were judged by, with the limits the scatter raised. `cell_scatter`
    holds each cell's own scatter in the earlier runs given as history (`bench.compare.history_scatter`), by cell
    key and metric; a cell whose own scatter is larger was judged by a higher limit still (`cell_rules`), and its
    `why` says so.
    """

    base: Side
    cand: Side
    rules: Rules
    cells: tuple[CellComparison, ...]
    machine_note: str | None
    scatter: tuple[Scatter, ...] = ()
    cell_scatter: Mapping[CellKey, Mapping[str, Scatter]] = field(default_factory=dict)

    @property
    def scatter_note(self) -> str | None:
        """What the scatter did to the threshold, when it raised it."""
        raised = [s for s in self.scatter if s.limit(self.rules.threshold) > self.rules.threshold]
        if not raised:
            return None
        parts = [f"{s.metric} +-{math.exp(s.sigma) - 1:.1%} ({s.cells} cells)" for s in raised]
        limits = ", ".join(f"{s.limit(self.rules.threshold):.1%} in {s.metric}" for s in raised)
        threshold = self.rules.threshold
        return f"run-to-run scatter {', '.join(parts)}: changes count beyond {limits} (threshold {threshold:.0%})"

    def cell_rules(self, key: CellKey) -> Rules:
        """The rules the cell `key` was judged by: `rules`, with the limits its own history raised."""
        return _raised(self.rules, self.cell_scatter.get(key, {}))[0]

    def regressions(self, fail_on: Iterable[str] | None = None) -> list[CellComparison]:
        """The cells that regressed in a metric of `fail_on` (default: the rules' own)."""
        metrics = tuple(self.rules.fail_on if fail_on is None else fail_on)
        return [cell for cell in self.cells if cell.regressed_in(metrics)]

    @property
    def failed(self) -> bool:
        """Whether the comparison fails: a regression in a metric the rules fail on."""
        return bool(self.regressions())

    @property
    def undecided(self) -> str | None:
        """The INCONCLUSIVE line when more than `rules.max_inconclusive` of the cells could not be judged, else None
        (`bench.compare.verdicts.inconclusive_line`)."""
        return inconclusive_line(self.cells, self.rules.max_inconclusive)

    def counts(self) -> dict[str, int]:
        """Cells per verdict, in `VERDICTS` order (zero counts included)."""
        return {verdict: sum(1 for cell in self.cells if cell.verdict == verdict) for verdict in VERDICTS}


def machine_text(machine: Mapping[str, Any]) -> str:
    """A machine in a few words: arch, CPU model and hostname (`x86_64 AMD EPYC on vm`)."""
    arch = machine.get("arch") or "?"
    cpu = machine.get("cpu_model") or "unknown CPU"
    return f"{arch} {cpu} on {machine.get('hostname') or '?'}"


def _machines(base: Record, cand: Record) -> tuple[str, str]:
    texts = machine_text(base.machine), machine_text(cand.machine)
    if texts[0] != texts[1]:
        return texts
    # Same CPU and host, another torch build or GPU: name what the machine digest also covers.
    extra = [f"torch {m.get('torch')}, GPU {m.get('cuda_device') or 'none'}" for m in (base.machine, cand.machine)]
    return f"{texts[0]} ({extra[0]})", f"{texts[1]} ({extra[1]})"


def _key(record: Record) -> tuple[str, str]:
    return record.cell_id, record.target


# A median reference move needs a few cells of the model to stand for them.
_SHARED_MIN_CELLS = 3


def _reference_key(record: Record) -> tuple[str, int, str, str]:
    """Cells that time the same reference artifact on the same machine."""
    return record.model, record.batch, record.place, record.machine_id


def _shared_references(pairs: list[tuple[Record, Record]]) -> dict[tuple[str, int, str, str], float]:
    """Per reference model, how far its reference moved between the runs in the median trusted cell."""
    moves: dict[tuple[str, int, str, str], list[float]] = {}
    for pair in pairs:
        trusted = trusted_pair(*pair)
        if trusted is None or trusted[0].machine_id != trusted[1].machine_id:
            continue
        base, cand = trusted
        assert base.timing is not None and cand.timing is not None
        moves.setdefault(_reference_key(base), []).append(cand.timing.baseline_median_s / base.timing.baseline_median_s)
    return {key: statistics.median(found) for key, found in moves.items() if len(found) >= _SHARED_MIN_CELLS}


def _raised(rules: Rules, own: Mapping[str, Scatter]) -> tuple[Rules, dict[str, Scatter]]:
    """`rules` with each timing limit raised to the cell's own scatter `own` where that is larger, and which were."""
    raised = {metric: s for metric, s in own.items() if s.limit(rules.threshold) > rules.limit(metric)}
    if not raised:
        return rules, raised
    limits = {metric: s.limit(rules.threshold) for metric, s in raised.items()}
    latency, speedup = limits.get("latency", rules.latency_limit), limits.get("speedup", rules.speedup_limit)
    return replace(rules, latency_limit=latency, speedup_limit=speedup), raised


def _judge(
    base: Record | None, cand: Record | None, rules: Rules, shared: float | None,
    history: Mapping[CellKey, Mapping[str, Scatter]],
) -> CellComparison:  # fmt: skip
    """One cell, by `rules` with its timing limits raised to its own scatter in `history` where that is larger."""
    record = cand if cand is not None else base
    assert record is not None
    rules, raised = _raised(rules, history.get(_key(record), {}))
    cell = compare_cell(base, cand, rules, shared)
    # Named only where the metric was judged: a new, failed or cross-machine latency cell never used the limit.
    shown = {m: s for m, s in raised.items() if m in cell.metrics and cell.metrics[m].outcome != "n/a"}
    if not shown:
        return cell
    return replace(cell, why="; ".join(part for part in (cell.why, history_note(shown, rules.threshold)) if part))


def compare_runs(base: Side, cand: Side, rules: Rules, *, history: Sequence[Side] = ()) -> Comparison:
    """Judge every cell of `cand` against `base`; cells are matched by cell id and target.

    `history`: earlier runs of the same matrix on the same machine kind, oldest first (`history_scatter.load_history`
    reads them). Each cell's own run-to-run scatter in them raises that cell's timing limits above the comparison's
    where it is larger; the candidate run itself is left out of it should it be among them.

    Raises:
        BenchError: the runs have no cell in common, or their machines differ under `rules.strict_machine`.
    """
    bases = {_key(record): record for record in base.records}
    cands = {_key(record): record for record in cand.records}
    if not bases.keys() & cands.keys():
        raise BenchError(
            f"BASE run {base.run.run_id} ({len(bases)} cells) and CAND run {cand.run.run_id} ({len(cands)} cells)"
            " have no cell in common: compare runs of one matrix"
        )
    pairs = [(bases[key], cands.get(key)) for key in bases] + [(None, cands[key]) for key in cands if key not in bases]
    other = next(((b, c) for b, c in pairs if b is not None and c is not None and b.machine_id != c.machine_id), None)
    note = None
    if other is not None:
        shown = _machines(*other)
        if rules.strict_machine:
            raise BenchError(
                f"--strict-machine: BASE ran on {shown[0]}, CAND on {shown[1]}: latencies of two machines are not"
                " comparable"
            )
        note = (
            f"BASE ran on {shown[0]}, CAND on {shown[1]}: absolute latencies are not compared across machines,"
            " only the speedups measured within each run"
        )
    matched = [(b, c) for b, c in pairs if b is not None and c is not None]
    scatter = tuple(found for metric in ("latency", "speedup") if (found := estimate_scatter(matched, metric)))
    limits = {s.metric: s.limit(rules.threshold) for s in scatter}
    judged = replace(rules, latency_limit=limits.get("latency"), speedup_limit=limits.get("speedup"))
    shared = _shared_references(matched)
    # The candidate's own move is what is judged: counted in its history, it would excuse itself.
    earlier = estimate_history(side for side in history if side.run.run_id != cand.run.run_id)
    own = {key: earlier[key] for key in bases.keys() | cands.keys() if key in earlier}
    cells = tuple(_judge(b, c, judged, shared.get(_reference_key(b)) if b else None, own) for b, c in pairs)
    return Comparison(base, cand, judged, cells, note, scatter, own)
