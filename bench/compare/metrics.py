"""One metric of one matched cell, judged: latency, speedup, top-1 and bytes, each to its own rule.

Timing (latency, speedup) follows `bench.compare.stats` on the raw samples, and is `inconclusive` when either side's
timing is flagged busy, noisy or throttled: such a figure may be off by multiples, so it neither passes nor fails.
Absolute latency is compared only on one machine (pyperf refuses to mix machines); a speedup is a ratio measured
within one run, so it is compared across machines too. Even on one machine, a shared VM can run a whole phase of
a run 1.5x slower with nothing visible inside it (two runs of one commit here: every mnist_cnn cell of one run,
none of the other). Each cell times its uncompressed reference interleaved with the candidate, so a latency change
that its own reference made as well (the same way, at least half as far, leaving less than the limit once divided
out) is `inconclusive`, unless the reference of the
model's median cell moved so too: every cell of a model times the same reference artifact, so a change to it (or
to what it shares with the candidate) moves all of them, while drift moves the cells of one phase. The speedup,
which divides the reference out, is judged on its own either way.

A layer sweep keeps no raw samples per GEMM, only each GEMM's speedup and its 95% interval, so its speedup is
judged by the sweep's aggregate (count-weighted dense time / sparse time) and interval non-overlap, the check asv
falls back to without samples: the aggregate must move beyond the threshold, and the GEMMs whose intervals do not
overlap, moving the same way, must carry more than half the base sweep's dense time (a single noisy small GEMM
cannot call a sweep changed; a real kernel change moves the GEMMs that dominate the sum). A sweep's absolute
times have no interval at all and are shown, not judged.

Top-1 is deterministic given the weights, but a held-out set is a sample: a change counts when it exceeds both the
tolerance and `accuracy_z` binomial standard errors of the difference (both sides' errors combined). Bytes are
deterministic: every change of any encoding is reported; growth is a regression, shrinkage an improvement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.compare.rules import Rules
from bench.compare.stats import RatioChange, outside, ratio_change
from bench.records import LayerResult, LayersRecord, ModelRecord, Record

__all__ = ["MetricChange", "latency", "speedup", "accuracy", "size", "flagged_note"]


@dataclass(frozen=True)
class MetricChange:
    """One metric's outcome (`bench.compare.rules.OUTCOMES`), what the table shows, and why.

    `value` is the candidate / base ratio (latency, speedup, bytes of the encoding that changed most) or the top-1
    difference in points; `low`/`high` its 95% interval where there is one; `p_value` Mann-Whitney's where run.
    """

    metric: str
    outcome: str
    shown: str
    note: str = ""
    value: float | None = None
    low: float | None = None
    high: float | None = None
    p_value: float | None = None


def flagged_note(base: Record, cand: Record) -> str:
    """Why the timing of a pair is not to be trusted ("busy in CAND"), or "" when neither side is flagged."""
    parts = [f"{'/'.join(r.flags)} in {side}" for side, r in (("BASE", base), ("CAND", cand)) if r.flags]
    return ", ".join(parts)


def _outcome(direction: int, worse: int) -> str:
    if direction == 0:
        return "unchanged"
    return "regressed" if direction == worse else "improved"


def _from_ratio(metric: str, change: RatioChange, worse: int, shown: str, flagged: str) -> MetricChange:
    outcome = "inconclusive" if flagged else _outcome(change.direction, worse)
    if flagged:
        note = f"{metric} {flagged}"
    elif change.direction:
        evidence = f"p={change.p_value:.1g}" if change.p_value is not None else "whole interval beyond threshold"
        note = f"{metric} {change.ratio - 1:+.0%} ({evidence})"
    else:
        note = f"{metric} {change.reason}" if change.reason else ""
    return MetricChange(metric, outcome, shown, note, change.ratio, change.low, change.high, change.p_value)


def latency(base: Record, cand: Record, rules: Rules, shared_reference: float | None = None) -> MetricChange:
    """The candidate's latency, cand / base of the medians of `timing.samples_s` (> 1 is slower).

    `shared_reference` is how far the reference moved in the median cell of the same reference model (None when
    the comparison has too few such cells to say): a move every cell saw is a change, one cell's own is drift.
    """
    if base.machine_id != cand.machine_id:
        return MetricChange("latency", "n/a", "n/a (other machine)")
    if isinstance(base, LayersRecord) and isinstance(cand, LayersRecord):
        if base.sparse_s is None or cand.sparse_s is None:
            return MetricChange("latency", "n/a", "n/a")
        ratio = cand.sparse_s / base.sparse_s
        return MetricChange("latency", "n/a", f"{ratio:.2f} (no CI)", value=ratio)
    if not (isinstance(base, ModelRecord) and isinstance(cand, ModelRecord)):
        return MetricChange("latency", "n/a", "n/a (another kind of cell)")
    if base.timing is None or cand.timing is None or not base.timing.samples_s or not cand.timing.samples_s:
        return MetricChange("latency", "n/a", "n/a (no samples)")
    limit = rules.limit("latency")
    change = ratio_change(base.timing.samples_s, cand.timing.samples_s, limit, rules.p_threshold, rules.seed)
    shown = f"{change.ratio:.2f} [{change.low:.2f}, {change.high:.2f}]"
    flagged = flagged_note(base, cand)
    reference = cand.timing.baseline_median_s / base.timing.baseline_median_s
    # A move the model's cells share: the median cell's reference moved the same way, and this cell's about as far.
    shared = (
        shared_reference is not None
        and outside(shared_reference, limit) == change.direction
        and outside(reference / shared_reference, limit) == 0
    )
    if not flagged and change.direction and not shared and _explained(change.ratio, reference, limit):
        flagged = f"moved with its own reference ({reference - 1:+.0%}), not with the model's other cells: drift"
    return _from_ratio("latency", change, +1, shown, flagged)


def _explained(ratio: float, reference: float, limit: float) -> bool:
    """Whether the reference's own move accounts for a latency change: it went the same way, at least half as far
    (in log terms), and what is left once it is divided out is within the limit."""
    moved, own = math.log(ratio), math.log(reference)
    return moved * own > 0 and abs(own) >= abs(moved) / 2 and outside(ratio / reference, limit) == 0


def speedup(base: Record, cand: Record, rules: Rules) -> MetricChange:
    """The speedup over the dense baseline measured within each run, base -> cand (a drop is a regression)."""
    if isinstance(base, LayersRecord) and isinstance(cand, LayersRecord):
        return _sweep_speedup(base, cand, rules)
    if not (isinstance(base, ModelRecord) and isinstance(cand, ModelRecord)):
        return MetricChange("speedup", "n/a", "n/a (another kind of cell)")
    if base.timing is None or cand.timing is None:
        return MetricChange("speedup", "n/a", "n/a")
    shown = f"{base.timing.speedup_median:.2f} -> {cand.timing.speedup_median:.2f}"
    if not base.timing.samples_speedup or not cand.timing.samples_speedup:
        return MetricChange("speedup", "n/a", f"{shown} (no samples)")
    change = ratio_change(
        base.timing.samples_speedup,
        cand.timing.samples_speedup,
        rules.limit("speedup"),
        rules.p_threshold,
        rules.seed + 1,
    )
    return _from_ratio("speedup", change, -1, shown, flagged_note(base, cand))


def _gemm_direction(base: LayerResult, cand: LayerResult) -> int:
    """+1 / -1 when the two GEMMs' speedup intervals do not overlap (cand faster / slower), else 0."""
    if None in (base.speedup_ci_low, base.speedup_ci_high, cand.speedup_ci_low, cand.speedup_ci_high):
        return 0
    if cand.speedup_ci_low > base.speedup_ci_high:  # type: ignore[operator]
        return 1
    if cand.speedup_ci_high < base.speedup_ci_low:  # type: ignore[operator]
        return -1
    return 0


def _sweep_speedup(base: LayersRecord, cand: LayersRecord, rules: Rules) -> MetricChange:
    if base.speedup_median is None or cand.speedup_median is None:
        return MetricChange("speedup", "n/a", "n/a")
    ratio = cand.speedup_median / base.speedup_median
    shown = f"{base.speedup_median:.2f} -> {cand.speedup_median:.2f}"
    flagged = flagged_note(base, cand)
    if flagged:
        return MetricChange("speedup", "inconclusive", shown, f"speedup {flagged}", ratio)
    direction = outside(ratio, rules.limit("speedup"))
    if direction == 0:
        return MetricChange("speedup", "unchanged", shown, value=ratio)
    # A GEMM of the sweep is counted as often as it occurs in the model, as the aggregate counts it.
    cands = {(g.m, g.k, g.n): g for g in cand.layers}
    weight = {(g.m, g.k, g.n): len(g.layers) * g.dense_median_s for g in base.layers}
    total = sum(weight.values())
    moved = 0.0
    for gemm in base.layers:
        key = (gemm.m, gemm.k, gemm.n)
        if key in cands and _gemm_direction(gemm, cands[key]) == direction:
            moved += weight[key]
    if moved * 2 <= total:
        note = f"speedup within noise ({moved / total:.0%} of the sweep's time in GEMMs with separate intervals)"
        return MetricChange("speedup", "unchanged", shown, note, ratio)
    return MetricChange("speedup", _outcome(direction, -1), shown, value=ratio)


def accuracy(base: Record, cand: Record, rules: Rules) -> MetricChange:
    """Top-1 change in percentage points; a change counts beyond the tolerance and its standard error."""
    a = base.accuracy if isinstance(base, ModelRecord) else None
    b = cand.accuracy if isinstance(cand, ModelRecord) else None
    if a is None or b is None or a.top1 is None or b.top1 is None:
        return MetricChange("accuracy", "n/a", "")
    delta = (b.top1 - a.top1) * 100.0
    shown = f"{a.top1 * 100:.2f} -> {b.top1 * 100:.2f}" if delta else f"{b.top1 * 100:.2f} ="
    errors = (a.standard_error, b.standard_error)
    se = None if None in errors else 100.0 * (errors[0] ** 2 + errors[1] ** 2) ** 0.5  # type: ignore[operator]
    needed = max(rules.accuracy_tolerance, rules.accuracy_z * se if se is not None else 0.0)
    if abs(delta) <= needed:
        note = f"top-1 {delta:+.2f} pt within {needed:.2f} pt" if delta else ""
        return MetricChange("accuracy", "unchanged", shown, note, delta)
    unknown = "" if se is not None else " (held-out set size unknown: tolerance only)"
    note = f"top-1 {delta:+.2f} pt beyond {needed:.2f} pt{unknown}"
    return MetricChange("accuracy", "regressed" if delta < 0 else "improved", shown, note, delta)


def size(base: Record, cand: Record) -> MetricChange:
    """Bytes of every encoding; any change is reported, growth is a regression."""
    a = base.sizes if isinstance(base, ModelRecord) else None
    b = cand.sizes if isinstance(cand, ModelRecord) else None
    if a is None or b is None:
        return MetricChange("size", "n/a", "")
    before, after = a.encodings(), b.encodings()
    changes = {name: after[name] / before[name] for name in before if name in after and after[name] != before[name]}
    lost = [name for name in before if name not in after]
    gained = [name for name in after if name not in before]
    parts = [f"{name} {ratio - 1:+.1%}" for name, ratio in changes.items()]
    parts += [f"{name} gone" for name in lost] + [f"{name} new" for name in gained]
    if not parts:
        return MetricChange("size", "unchanged", "=")
    grew = [name for name, ratio in changes.items() if ratio > 1]
    outcome = "regressed" if grew else ("improved" if changes else "unchanged")
    largest = max(changes.values(), key=lambda ratio: abs(ratio - 1), default=None)
    note = f"bytes grew ({', '.join(grew)})" if grew else ""
    return MetricChange("size", outcome, ", ".join(parts), note, largest)
