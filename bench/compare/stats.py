"""Is a timing change between two runs real? The ratio of medians, its interval, and a rank test.

A cell's raw samples (`timing.samples_s`, `timing.samples_speedup`) are per-round figures of one run. Two runs
are compared the way asv compares two commits (`asv.statistics.is_different`, and `asv compare`'s factor):

1. The effect must matter: the ratio of the medians, candidate / base, lies beyond `1 + threshold` or below
   `1 / (1 + threshold)` (symmetric in log space, as asv's factor is: 5% slower and back again are one change).
   A run-to-run shift that the samples of one run cannot see (another process layout, a warmer CPU) is what the
   threshold absorbs; no test on within-run samples can.
2. The samples must say it is real: Mann-Whitney U, two-sided, below `p_threshold` (asv's default, 0.002). A
   comparison tests every cell and two metrics each, ~100 tests for the reference matrix: at 0.05 a few cells
   would be called changed by chance in every comparison, at 0.002 about one comparison in five has one, and the
   threshold in (1) removes most of those. The rank test needs no normality and is untroubled by the long
   right tail of latencies.
3. The 95% interval of the ratio of medians (a seeded percentile bootstrap, resampling each side on its own)
   must exclude 1: Mann-Whitney answers "is one side stochastically larger", which a change of spread alone can
   make true; the interval ties the call to the medians, the figure the table shows.

When a side has so few samples that no ordering of them reaches `p_threshold` (asv's `p_min` check: 1 / C(m+n,
min(m, n))), the test cannot speak; as asv falls back to interval non-overlap, the change is then called only when
the whole 95% interval lies beyond the threshold (stricter than (1) and (3) together, as it must be without a
test).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["RatioChange", "ratio_change", "outside", "CONFIDENCE"]

CONFIDENCE = 0.95
# Resamples of the bootstrap: the interval's ends move by well under 1% of the ratio between seeds at this count,
# and ~100 cells are resampled in well under a second.
_RESAMPLES = 2000


@dataclass(frozen=True)
class RatioChange:
    """Candidate / base of the medians of two samples, its interval, and whether the change is real.

    `direction` is +1 when the candidate's median is beyond `1 + threshold`, -1 when below `1 / (1 + threshold)`,
    0 otherwise or when the samples do not show it (see the module's rule); `p_value` is None when too few samples
    let Mann-Whitney reach the threshold.
    """

    ratio: float
    low: float
    high: float
    p_value: float | None
    direction: int
    reason: str


def outside(ratio: float, threshold: float) -> int:
    """+1 beyond `1 + threshold`, -1 below `1 / (1 + threshold)`, 0 within."""
    if ratio > 1.0 + threshold:
        return 1
    if ratio < 1.0 / (1.0 + threshold):
        return -1
    return 0


def _median_ratio(base: np.ndarray, cand: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(cand, axis=axis) / np.median(base, axis=axis)


def _interval(base: np.ndarray, cand: np.ndarray, seed: int) -> tuple[float, float]:
    if np.all(base == base[0]) and np.all(cand == cand[0]):
        ratio = float(cand[0] / base[0])  # every resample is the same: the bootstrap would warn of a degenerate one
        return ratio, ratio
    result = stats.bootstrap(
        (base, cand), _median_ratio, n_resamples=_RESAMPLES, vectorized=True, paired=False,
        confidence_level=CONFIDENCE, method="percentile", rng=np.random.default_rng(seed),
    )  # fmt: skip
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _smallest_p(m: int, n: int) -> float:
    """The smallest two-sided p Mann-Whitney can give for samples of sizes m and n (all of one above the other)."""
    return math.exp(math.log(2.0) - (math.lgamma(m + n + 1) - math.lgamma(m + 1) - math.lgamma(n + 1)))


def ratio_change(
    base: Sequence[float], cand: Sequence[float], threshold: float, p_threshold: float, seed: int = 0
) -> RatioChange:
    """Whether the median of `cand` differs from that of `base` by more than `threshold`, by the module's rule.

    Args:
        base: raw samples of the base run (at least one, all > 0).
        cand: raw samples of the candidate run.
        threshold: the smallest relative change that counts (0.05 = 5%).
        p_threshold: the Mann-Whitney p below which the samples show a change.
        seed: the bootstrap's seed, so one comparison always prints the same interval.
    """
    b = np.asarray(base, dtype=float)
    c = np.asarray(cand, dtype=float)
    ratio = float(_median_ratio(b, c))
    low, high = _interval(b, c, seed)
    beyond = outside(ratio, threshold)
    if _smallest_p(len(b), len(c)) >= p_threshold:
        whole = outside(low, threshold) if outside(low, threshold) == outside(high, threshold) else 0
        reason = f"{len(b)}+{len(c)} samples, too few for a rank test: the whole interval must pass the threshold"
        return RatioChange(ratio, low, high, None, whole, reason if beyond and not whole else "")
    p_value = float(stats.mannwhitneyu(b, c, alternative="two-sided").pvalue)
    if not beyond:
        return RatioChange(ratio, low, high, p_value, 0, "")
    if p_value >= p_threshold:
        return RatioChange(ratio, low, high, p_value, 0, f"within noise (Mann-Whitney p={p_value:.2g})")
    if low <= 1.0 <= high:
        return RatioChange(ratio, low, high, p_value, 0, "within noise (the interval holds 1)")
    return RatioChange(ratio, low, high, p_value, beyond, "")
