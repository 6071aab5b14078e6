"""How a run's numbers were measured, from its records and config: the facts of the report's method section.

The timing protocol as the run configured it, which stop rule ended each timing, every cell whose timing may be
off and why, the host that ran the suite and the commit it ran, so a reader can judge the numbers without the
source code at hand.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.labels import short_label, short_place
from bench.records import LayersRecord, ModelRecord, Record
from bench.report.captions import rounds_text
from bench.store.database import Run
from targets.worker import TIMING_DEFAULTS

__all__ = ["MethodFacts", "method_facts", "STOP_RULES"]

STOP_RULES = {
    "ci": "the 95% CI of the median speedup was within the run's relative width",
    "budget": "the time budget of the pair was spent",
    "max_rounds": "the most rounds were run",
}
"""What each stop rule of the worker means, as the method section explains it."""


@dataclass(frozen=True)
class MethodFacts:
    """The method section's facts; lists of rows are (label, place, flags, detail) tuples."""

    protocol: list[str]
    stops: list[tuple[str, int, str]]
    flagged: list[tuple[str, str, str, str]]
    rounds: str
    commit: str
    host: list[tuple[str, str]] = field(default_factory=list)


def _protocol(timing: Mapping[str, Any]) -> list[str]:
    knobs = {**TIMING_DEFAULTS, **timing}
    return [
        "Each cell's baseline (the uncompressed model) and candidate are timed interleaved in one worker process,"
        " round after round, so drift of the machine hits both alike; the speedup is the median of the per-round"
        " ratios and its interval the distribution-free 95% CI of that median.",
        f"Warm-up: {knobs['warmup_s']:g} s per side; each timed block runs at least {1e3 * knobs['block_min_s']:g} ms"
        " (repeating the forward pass as often as needed).",
        f"Stop rules: after at least {knobs['min_rounds']} rounds, stop when the CI is within"
        f" +-{100 * knobs['ci_rel']:g}% of the median, or when {knobs['budget_s']:g} s of timed work are spent;"
        f" never more than {knobs['max_rounds']} rounds.",
        "Models whose work depends on the input (early exits) are timed over a stream of real inputs, each alone at"
        " batch 1; their intervals are bootstraps over the inputs.",
    ]


def _flag_detail(record: Record) -> str:
    if isinstance(record, ModelRecord) and record.timing is not None:
        timing = record.timing
        parts = []
        if timing.other_cpu_cores is not None:
            parts.append(f"other processes used {timing.other_cpu_cores:.2f} cores")
        if timing.noisy:
            iqr = max(timing.iqr_s / timing.median_s, timing.baseline_iqr_s / timing.baseline_median_s)
            parts.append(f"IQR {100 * iqr:.0f}% of the median")
        if timing.throttle_reason:
            parts.append(timing.throttle_reason)
        return "; ".join(parts)
    return ""


def method_facts(run: Run, records: Sequence[Record]) -> MethodFacts:
    """The method facts of a run's records (the protocol from its config, defaults where it names none)."""
    timing = run.config.get("timing") if isinstance(run.config.get("timing"), dict) else {}
    timed = [r for r in records if isinstance(r, ModelRecord) and r.timing is not None]
    stops = Counter(r.timing.stopped_by for r in timed if r.timing is not None)
    flagged = [
        (short_label(r), short_place(r), ", ".join(r.flags), _flag_detail(r))
        for r in records if r.flags and not isinstance(r, LayersRecord)
    ]  # fmt: skip
    flagged += [
        (f"layer sweep {r.params.get('sparsity', '')}", short_place(r), ", ".join(layer_flags), "")
        for r in records if isinstance(r, LayersRecord)
        for layer_flags in [sorted({flag for layer in r.layers for flag in layer.flags})] if layer_flags
    ]  # fmt: skip
    commit = run.commit.get("commit") or "unknown"
    host = run.host or {}
    shown = [
        ("host", str(host.get("hostname", "?"))), ("arch", str(host.get("arch", "?"))),
        ("OS", str(host.get("os", "?"))), ("Python", str(host.get("python", "?"))),
        ("CPUs", f"{host.get('cpu_count_physical', '?')} physical, {host.get('cpu_count_logical', '?')} logical"),
        ("load average", ", ".join(f"{x:.2f}" for x in host.get("load_average") or []) or "?"),
    ]  # fmt: skip
    return MethodFacts(
        protocol=_protocol(timing or {}),
        stops=[(rule, count, STOP_RULES.get(rule, rule)) for rule, count in stops.most_common()],
        flagged=flagged,
        rounds=rounds_text(timed),
        commit=f"{commit}{' (with uncommitted changes)' if run.commit.get('dirty') else ''}",
        host=shown,
    )
