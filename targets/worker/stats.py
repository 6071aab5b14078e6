"""The statistics of a timed pair, plain stdlib so that host and device compute the very same numbers.

The host imports these from ``targets.worker``; the worker summarizes each pair with them before answering.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Mapping, Sequence
from typing import Any, Callable

__all__ = [
    "bootstrap_ratio_ci", "ci_rel_halfwidth", "distribution", "iqr", "median", "median_ci", "percentile", "summarize",
    "verdict",
]  # fmt: skip


def median(xs: Sequence[float]) -> float:
    """Median of a non-empty sample.

    Args:
        xs: The sample.

    Returns:
        The middle value (mean of the two middle values for an even count).

    Raises:
        ValueError: If ``xs`` is empty.
    """
    if not xs:
        raise ValueError("median of an empty sample")
    return float(statistics.median(xs))


def iqr(xs: Sequence[float]) -> float:
    """Interquartile range, the spread statistic that a few slow outliers cannot inflate.

    Quartiles use linear interpolation between order statistics (``statistics.quantiles`` with the
    inclusive method, the same as numpy's default), so ``iqr([1, 2, 3, 4, 5]) == 2``.

    Args:
        xs: A non-empty sample.

    Returns:
        Third quartile minus first quartile; 0.0 for a single value.

    Raises:
        ValueError: If ``xs`` is empty.
    """
    if not xs:
        raise ValueError("iqr of an empty sample")
    if len(xs) == 1:
        return 0.0
    q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return float(q3 - q1)


def median_ci(xs: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval for the median.

    Timings are skewed and heavy-tailed (interference only ever adds time), so a normal-theory interval
    would be wrong. The interval is ``(x_(j), x_(n+1-j))`` of the sorted sample, where the rank ``j`` is the
    largest one whose exact binomial coverage, ``1 - 2 * P(Binomial(n, 1/2) < j)``, is at least
    ``confidence``. When even ``(min, max)`` covers less (n <= 5 at 95%), ``(min, max)`` is returned: the
    widest interval the sample can give, with less than the asked coverage.

    Args:
        xs: A non-empty sample.
        confidence: Coverage in (0, 1).

    Returns:
        ``(low, high)``; ``low <= median(xs) <= high``.

    Raises:
        ValueError: If ``xs`` is empty or ``confidence`` is outside (0, 1).
    """
    if not xs:
        raise ValueError("median_ci of an empty sample")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    ordered = sorted(xs)
    n = len(ordered)
    alpha_half = (1.0 - confidence) / 2.0
    total = 2**n
    rank = 0
    below = 0  # integer count of outcomes with Binomial(n, 1/2) < rank + 1, exact for any n
    term = 1  # comb(n, rank), kept by recurrence
    while rank < n // 2:
        below += term
        if below / total > alpha_half:
            break
        rank += 1
        term = term * (n - rank + 1) // rank
    if rank == 0:
        return float(ordered[0]), float(ordered[-1])
    return float(ordered[rank - 1]), float(ordered[n - rank])


def ci_rel_halfwidth(speedups: Sequence[float]) -> float:
    """The larger distance from the median speedup to an end of its 95% interval, relative to the median."""
    speedup = median(speedups)
    low, high = median_ci(speedups)
    return max(speedup - low, high - speedup) / speedup


def verdict(speedups: Sequence[float], used_s: float, pair: Mapping[str, Any]) -> str | None:
    """Why the rounds stop now, or None to go on: ``ci`` once the median speedup's interval is within
    ``ci_rel``, ``budget`` once ``budget_s`` of timed work is spent; neither before ``min_rounds``."""
    if len(speedups) < pair["min_rounds"]:
        return None
    if ci_rel_halfwidth(speedups) <= pair["ci_rel"]:
        return "ci"
    if used_s >= pair["budget_s"]:
        return "budget"
    return None


def summarize(baseline_s: Sequence[float], candidate_s: Sequence[float], speedups: Sequence[float]) -> dict[str, float]:
    """Summary statistics of one timed pair.

    ``ci_rel_halfwidth`` is the larger distance from the median speedup to an end of its 95% interval,
    relative to the median: the interval is asymmetric for skewed samples, and "within +-2%" should hold
    on both sides.

    Args:
        baseline_s: Per-iteration seconds of the baseline, one per round.
        candidate_s: Per-iteration seconds of the candidate, one per round.
        speedups: Per-round baseline/candidate ratios.

    Returns:
        Medians and IQRs of both timings, and the median speedup with its 95% interval.
    """
    speedup = median(speedups)
    low, high = median_ci(speedups)
    return {
        "baseline_median_s": median(baseline_s),
        "baseline_iqr_s": iqr(baseline_s),
        "candidate_median_s": median(candidate_s),
        "candidate_iqr_s": iqr(candidate_s),
        "speedup_median": speedup,
        "speedup_ci_low": low,
        "speedup_ci_high": high,
        "ci_rel_halfwidth": ci_rel_halfwidth(speedups),
    }


def percentile(xs: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between order statistics, numpy's default.

    Raises:
        ValueError: If ``xs`` is empty or ``q`` is outside [0, 100].
    """
    if not xs:
        raise ValueError("percentile of an empty sample")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be in [0, 100], got {q}")
    ordered = sorted(xs)
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def distribution(xs: Sequence[float]) -> dict[str, float]:
    """Mean, median, 90th and 99th percentile of latencies: what a stream of inputs costs on average and what
    its slowest inputs cost, which differ when the work depends on the input."""
    return {
        "mean_s": float(statistics.fmean(xs)),
        "p50_s": percentile(xs, 50.0),
        "p90_s": percentile(xs, 90.0),
        "p99_s": percentile(xs, 99.0),
    }


def bootstrap_ratio_ci(
    baseline: Sequence[float],
    candidate: Sequence[float],
    statistic: Callable[[Sequence[float]], float],
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``statistic(baseline) / statistic(candidate)`` over paired items.

    Items (the inputs of a stream) are drawn with replacement, the same draw for both sides, so the interval
    says how much the ratio depends on which inputs the stream happened to hold, timing noise included.

    Raises:
        ValueError: If the sides are empty or of different lengths, or ``confidence`` is outside (0, 1).
    """
    if not baseline or len(baseline) != len(candidate):
        raise ValueError(f"paired samples of equal, non-zero length needed, got {len(baseline)} and {len(candidate)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = random.Random(seed)
    indices = range(len(baseline))
    ratios = []
    for _ in range(resamples):
        drawn = rng.choices(indices, k=len(baseline))
        ratios.append(statistic([baseline[i] for i in drawn]) / statistic([candidate[i] for i in drawn]))
    tail = (1.0 - confidence) / 2.0 * 100.0
    return percentile(ratios, tail), percentile(ratios, 100.0 - tail)
