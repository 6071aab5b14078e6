"""The MAC-budget ratio search, against synthetic MAC curves (no pruning involved)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from torch import nn

from compressors._ratio_search import MAX_TRIALS, TOLERANCE, search_ratio

DENSE = 1_000_000


class _Probe(nn.Module):
    """A stand-in pruned model that remembers the ratio it was made at."""

    def __init__(self, ratio: float) -> None:
        super().__init__()
        self.ratio = ratio


def _search(curve: Callable[[float], int], target: float, max_ratio: float = 0.99) -> tuple[float, int, list[float]]:
    """Runs the search on a MAC curve (ratio -> MACs); returns the chosen ratio, its MACs, and every ratio tried."""
    tried: list[float] = []

    def prune(ratio: float) -> nn.Module:
        tried.append(ratio)
        return _Probe(ratio)

    trial = search_ratio(prune, lambda model: curve(model.ratio), DENSE, target, max_ratio)
    return trial.ratio, trial.macs, tried


@pytest.mark.parametrize("target", [0.9, 0.5, 0.25, 0.1])
def test_quadratic_curve_is_hit_in_one_trial(target: float) -> None:
    _, macs, tried = _search(lambda r: round(DENSE * (1 - r) ** 2), target)
    assert len(tried) == 1
    assert macs / DENSE == pytest.approx(target, abs=1e-6)


@pytest.mark.parametrize("target", [0.9, 0.5, 0.25, 0.1])
def test_other_monotone_curves_converge_within_tolerance(target: float) -> None:
    _, macs, tried = _search(lambda r: round(DENSE * (1 - r) ** 1.3), target)
    assert abs(macs / DENSE - target) <= TOLERANCE
    assert len(tried) <= MAX_TRIALS


def test_a_coarse_step_curve_returns_the_closest_trial() -> None:
    steps = 8  # only 9 reachable MAC levels, none within tolerance of 0.3
    _, macs, tried = _search(lambda r: round(DENSE * math.floor((1 - r) * steps) / steps), 0.3)
    assert len(tried) == MAX_TRIALS
    reachable = [k / steps for k in range(steps + 1)]
    assert macs / DENSE == min(reachable, key=lambda level: abs(level - 0.3))
    assert all(0.0 <= ratio <= 0.99 for ratio in tried)


def test_ratios_never_exceed_the_maximum() -> None:
    _, macs, tried = _search(lambda r: round(DENSE * (1 - r) ** 2), 0.001, max_ratio=0.5)
    assert max(tried) <= 0.5
    assert macs == round(DENSE * 0.25)
