"""The statistics of a timed pair, plain stdlib so that host and device compute the very same numbers.

The host imports these from ``targets.worker``; the worker summarizes each pair with them before answering.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

__all__ = ["ci_rel_halfwidth", "iqr", "median", "median_ci", "summarize"]


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
