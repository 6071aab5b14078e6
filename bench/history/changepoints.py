"""Change points of one cell's series across runs: where a metric stepped to a new level and stayed there.

The model is asv's step detection: a series is a piecewise-constant level plus noise, and the best fit trades how
well the levels explain the points against how many steps it takes (a penalized "Potts" fit). This module solves
that fit exactly, by optimal partitioning (dynamic programming over every segmentation, O(n^2) with prefix sums),
on weighted squared residuals, and then drops steps too small to matter.

The rule, step by step:

1. Timing and byte series are compared in log space, so a step is relative (+12% reads the same at 1 ms and at
   1 s); top-1 is compared in points, as `compare` does.
2. Noise: each point's sigma is the larger of its own standard error (from its measured interval) and the
   series' run-to-run scatter, which a single run's interval does not see. The scatter is estimated robustly as
   median(|successive differences|) / (0.6745 * sqrt(2)) (a step changes one difference only, so it barely moves
   this), then, since a median of few differences often comes out low, raised to the residual scatter around a
   first fit's levels, sqrt(RSS / (n - levels)), and the fit is made again. A metric may give a floor too
   (timings on a shared machine rarely repeat closer than 1%).
3. Fit: minimise sum_i ((z_i - level_i) / sigma_i)^2 + beta * (number of steps), beta = max(16, 3 ln n), over
   segmentations whose every level holds for at least two points: a step must explain at least what a 4-sigma
   jump of one point would, and a single odd point, first or last, is noise until the next run confirms it
   (`compare` judges the newest run against its base on its own). Nightly runs follow many cells, so a false
   alarm costs more than a small step found a run or two later: with 8 runs at 3% noise fewer than 1 flat series
   in 100 shows a step, and a 20% step is found at its run 9 times in 10 (at 2% noise, a 15% step 97 in 100).
4. Minimum step: a step whose levels differ by less than `min_step` (relative for log series, default 5%, the
   threshold `compare` uses; absolute for top-1) is merged into its neighbour, smallest first, and levels are
   refitted, so tiny shifts are never flagged.

The run-to-run scatter comes from the series itself, so changes are only searched for from `MIN_POINTS` points on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

__all__ = ["MIN_POINTS", "Step", "detect_steps", "scatter"]

MIN_POINTS = 4
"""Fewer points than this give no usable estimate of the run-to-run scatter, so no change is searched for."""

_MAD_TO_SIGMA = 1 / (0.6745 * math.sqrt(2))
"""For normal noise of sigma s, a difference of two points has median absolute value 0.6745 * sqrt(2) * s."""
_MIN_LEVEL = 2
"""Points a level must hold for: one odd point, first or last, is noise until the next run confirms it."""
_TINY = 1e-9
"""Sigma floor that keeps a series of identical points (bytes of an unchanged model) from dividing by zero."""


@dataclass(frozen=True)
class Step:
    """A change of level that starts at point `index` (the first point of the new level)."""

    index: int
    before: float
    after: float
    log: bool

    @property
    def change(self) -> float:
        """Relative change (0.12 = +12%) of a log series; absolute change of a linear one."""
        return self.after / self.before - 1 if self.log else self.after - self.before


def scatter(z: Sequence[float]) -> float:
    """The robust run-to-run scatter of a series (see the module docstring); 0 with fewer than 2 points."""
    if len(z) < 2:
        return 0.0
    return median(abs(b - a) for a, b in zip(z, z[1:], strict=False)) * _MAD_TO_SIGMA


def detect_steps(
    values: Sequence[float],
    errors: Sequence[float | None] | None = None,
    *,
    log: bool = True,
    min_step: float = 0.05,
    noise_floor: float = 0.0,
) -> list[Step]:
    """The steps of a series, oldest first.

    Args:
        values: the series in run order (positive when `log`).
        errors: each point's standard error, in the units the fit uses (relative for `log`, i.e. of ln value);
            None where a point has none.
        log: compare in log space (relative steps) rather than in the values' own units.
        min_step: the smallest step reported: relative for `log`, absolute otherwise.
        noise_floor: the least sigma any point gets, in the fit's units.
    """
    n = len(values)
    if n < MIN_POINTS:
        return []
    z = [math.log(v) for v in values] if log else [float(v) for v in values]
    own = [e or 0.0 for e in errors] if errors is not None else [0.0] * n
    beta = max(16.0, 3 * math.log(n))
    spread = max(scatter(z), noise_floor, _TINY)
    starts = _partition(z, _weights(own, spread), beta)
    spread = max(spread, _residual_scatter(z, starts))
    weights = _weights(own, spread)
    return _merge_small(z, weights, _partition(z, weights, beta), log, min_step)


def _weights(own: Sequence[float], spread: float) -> list[float]:
    return [1 / max(spread, e) ** 2 for e in own]


def _residual_scatter(z: Sequence[float], starts: Sequence[int]) -> float:
    """The unweighted scatter of the points around the levels of a segmentation, with one degree per level."""
    sums = _Sums(z, [1.0] * len(z))
    edges = [0, *starts, len(z)]
    residual = sum(sums.cost(a, b) for a, b in zip(edges, edges[1:], strict=False))
    freedom = len(z) - len(starts) - 1
    return math.sqrt(residual / freedom) if freedom > 0 else 0.0


class _Sums:
    """Prefix sums of w, w z and w z^2, so any segment's weighted mean and squared residual cost O(1)."""

    def __init__(self, z: Sequence[float], w: Sequence[float]) -> None:
        self.w, self.wz, self.wzz = [0.0], [0.0], [0.0]
        for value, weight in zip(z, w, strict=True):
            self.w.append(self.w[-1] + weight)
            self.wz.append(self.wz[-1] + weight * value)
            self.wzz.append(self.wzz[-1] + weight * value * value)

    def mean(self, i: int, j: int) -> float:
        return (self.wz[j] - self.wz[i]) / (self.w[j] - self.w[i])

    def cost(self, i: int, j: int) -> float:
        total = self.w[j] - self.w[i]
        first = self.wz[j] - self.wz[i]
        return max(0.0, self.wzz[j] - self.wzz[i] - first * first / total)


def _partition(z: Sequence[float], w: Sequence[float], beta: float) -> list[int]:
    """Start indices of the segments (after the first) of the optimal penalized piecewise-constant fit."""
    sums = _Sums(z, w)
    n = len(z)
    best = [-beta] + [math.inf] * n
    previous = [0] * (n + 1)
    for j in range(_MIN_LEVEL, n + 1):
        for i in range(j - _MIN_LEVEL + 1):
            candidate = best[i] + sums.cost(i, j) + beta
            if candidate < best[j]:
                best[j], previous[j] = candidate, i
    starts = []
    j = n
    while j > 0:
        j = previous[j]
        if j > 0:
            starts.append(j)
    return sorted(starts)


def _merge_small(z: Sequence[float], w: Sequence[float], starts: list[int], log: bool, min_step: float) -> list[Step]:
    """Steps between refitted levels, after merging away, smallest first, those below `min_step`."""
    sums = _Sums(z, w)
    starts = list(starts)
    while True:
        edges = [0, *starts, len(z)]
        levels = [sums.mean(a, b) for a, b in zip(edges, edges[1:], strict=False)]
        shown = [math.exp(level) for level in levels] if log else levels
        steps = [Step(start, shown[k], shown[k + 1], log) for k, start in enumerate(starts)]
        small = [step for step in steps if abs(step.change) < min_step]
        if not small:
            return steps
        starts.remove(min(small, key=lambda step: abs(step.change)).index)
