"""Cross-engine figures read from records: where a model ran on several engines at one target, threads and batch,
each engine's fp32 baseline, every variant's latency on every engine, and the sentence comparing them.

A cell's speedup compares its candidate with the uncompressed model on the same engine, interleaved; it cannot say
whether switching engines beats compressing the model, or how the two add up. These figures put every engine on
one latency scale, against the fastest fp32 baseline of the place, so that question has an answer.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench.analysis.series import NO_SPEEDUP, variant
from bench.labels import short_label
from bench.records import DEFAULT_ENGINE, ModelRecord, Record

__all__ = ["EngineComparison", "engine_comparisons", "engine_finding", "where"]


def where(record: ModelRecord) -> str:
    """The place without its engine ("cpu t=1 b=1"): what the engines of one comparison share."""
    return f"{record.target} t={record.threads} b={record.batch}"


@dataclass(frozen=True)
class EngineComparison:
    """One model at one target, threads and batch, on every engine it has records for.

    `cells` maps each variant (as `analysis.variant` names it) to its record on each engine, whatever its status;
    an engine missing from a variant's map has no record for it. `baselines` has the median of the interleaved
    fp32 baseline latencies of an engine's ok cells, for the engines that have one.
    """

    model: str
    where: str
    engines: tuple[str, ...]
    baselines: Mapping[str, float]
    cells: Mapping[str, Mapping[str, ModelRecord]]

    @property
    def fastest_baseline(self) -> tuple[str, float] | None:
        """The engine whose fp32 baseline is fastest here and its latency (s); None when no engine has one."""
        if not self.baselines:
            return None
        engine = min(self.baselines, key=lambda name: self.baselines[name])
        return engine, self.baselines[engine]

    @property
    def fastest(self) -> ModelRecord | None:
        """The ok cell with the lowest median latency on any engine: the fastest way measured to run the model."""
        ok = [record for cells in self.cells.values() for record in cells.values() if record.timing is not None]
        return min(ok, key=lambda record: _median_s(record), default=None)

    def speedup(self, seconds: float) -> float:
        """The fastest fp32 baseline's latency over `seconds`, as every speedup of the report is a ratio of times."""
        fastest = self.fastest_baseline
        if fastest is None:
            raise ValueError(f"{self.model} on {self.where} has no fp32 baseline to compare {seconds} s with")
        return fastest[1] / seconds

    def label(self, name: str) -> str:
        """The short label (`labels.short_label`) of a variant of `cells`, for table rows and tick labels."""
        return short_label(next(iter(self.cells[name].values())))


def _median_s(record: ModelRecord) -> float:
    assert record.timing is not None, "only ok records have a latency"
    return record.timing.median_s


def engine_comparisons(records: Sequence[Record]) -> dict[tuple[str, str], EngineComparison]:
    """(model, where) -> the comparison of its engines, for every model and place with records on two or more.

    Engines are listed with the default one first, then in the order their records come; variants in the order
    they come, as the model table lists them.
    """
    grouped: dict[tuple[str, str], list[ModelRecord]] = defaultdict(list)
    for record in records:
        if isinstance(record, ModelRecord):
            grouped[(record.model, where(record))].append(record)
    out = {}
    for (model, place), group in grouped.items():
        engines = tuple(sorted(dict.fromkeys(r.engine for r in group), key=lambda name: name != DEFAULT_ENGINE))
        if len(engines) < 2:
            continue
        cells: dict[str, dict[str, ModelRecord]] = defaultdict(dict)
        baselines: dict[str, list[float]] = defaultdict(list)
        for record in group:
            cells[variant(record)][record.engine] = record
            if record.timing is not None:
                baselines[record.engine].append(record.timing.baseline_median_s)
        medians = {engine: statistics.median(baselines[engine]) for engine in engines if baselines[engine]}
        out[(model, place)] = EngineComparison(model, place, engines, medians, dict(cells))
    return out


def _ms(seconds: float) -> str:
    return f"{1e3 * seconds:.3f} ms"


def engine_finding(comparison: EngineComparison) -> str:
    """One sentence, from the numbers: which engine runs the fp32 model fastest here and by what ratio, and which
    compressor on which engine is the fastest way measured to run the model."""
    model, place = comparison.model, comparison.where
    opening = f"Across engines, {model} on {place}:"
    fastest_baseline, fastest = comparison.fastest_baseline, comparison.fastest
    unmeasured = [engine for engine in comparison.engines if engine not in comparison.baselines]
    if fastest_baseline is None or fastest is None:
        return f"{opening} no engine has an ok cell, so there is no fp32 baseline to compare."
    engine, seconds = fastest_baseline
    if len(comparison.baselines) < 2:
        baseline = (
            f"only {engine} has a measured fp32 baseline ({_ms(seconds)}; {', '.join(unmeasured)} had no ok cell)"
        )
    else:
        others = sorted((s, name) for name, s in comparison.baselines.items() if name != engine)
        ratios = [f"{s / seconds:.2f}x faster than on {name} ({_ms(s)})" for s, name in others]
        baseline = f"the fp32 baseline is fastest on {engine} ({_ms(seconds)}), {' and '.join(ratios)}"
        if others[0][0] / seconds < NO_SPEEDUP:
            baseline += f", within the {NO_SPEEDUP:.2f}x timing noise can produce"
        if unmeasured:
            baseline += f" ({', '.join(unmeasured)} had no ok cell)"
    best = _median_s(fastest)
    return (
        f"{opening} {baseline}; the fastest way to run {model} there is {variant(fastest)} on {fastest.engine},"
        f" {_ms(best)}, a speedup of {comparison.speedup(best):.2f}x over the fastest fp32 baseline."
    )
