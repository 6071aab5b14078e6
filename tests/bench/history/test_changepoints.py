"""Step detection: noise-aware (flat noisy series give nothing), finds sustained steps at their run, and never
reports a step smaller than the minimum."""

from __future__ import annotations

import math
import random

import pytest

from bench.history.changepoints import MIN_POINTS, detect_steps, scatter


def _series(seed: int, n: int, noise: float, step_at: int | None = None, step: float = 0.0) -> list[float]:
    rng = random.Random(seed)
    return [
        (1 + step if step_at is not None and i >= step_at else 1.0) * math.exp(rng.gauss(0, noise)) for i in range(n)
    ]


@pytest.mark.parametrize("n", [6, 8, 12, 30])
def test_flat_series_with_ordinary_noise_has_no_step(n: int) -> None:
    found = [seed for seed in range(20) if detect_steps(_series(seed, n, 0.02), noise_floor=0.01)]
    assert found == []


@pytest.mark.parametrize("step", [0.15, 0.20, -0.15])
def test_sustained_step_is_found_at_its_run(step: float) -> None:
    for seed in range(10):
        steps = detect_steps(_series(seed, 8, 0.02, step_at=3, step=step), [0.005] * 8, noise_floor=0.01)
        assert [s.index for s in steps] == [3], seed
        assert steps[0].change == pytest.approx(step, rel=0.35)


def test_a_step_below_the_minimum_is_not_reported_however_clean() -> None:
    values = [100.0] * 4 + [103.0] * 4
    assert detect_steps(values) == []
    assert [s.index for s in detect_steps(values, min_step=0.02)] == [4]


def test_exact_series_steps_are_found_and_measured() -> None:
    (step,) = detect_steps([4000.0, 4000.0, 4000.0, 3000.0, 3000.0, 3000.0])
    assert step.index == 3 and step.before == pytest.approx(4000) and step.change == pytest.approx(-0.25)


def test_linear_series_steps_are_absolute() -> None:
    (step,) = detect_steps([90.0, 90.1, 89.9, 90.0, 87.0, 87.1, 86.9, 87.0], log=False, min_step=0.5)
    assert step.index == 4 and step.change == pytest.approx(-3.0, abs=0.05)
    assert detect_steps([90.0, 90.1, 89.9, 90.0, 89.7, 89.8, 89.6, 89.7], log=False, min_step=0.5) == []


def test_wide_intervals_hide_a_step_the_scatter_alone_would_show() -> None:
    values = [1.0, 1.0, 1.0, 1.1, 1.1, 1.1]
    assert [s.index for s in detect_steps(values, noise_floor=0.01)] == [3]
    assert detect_steps(values, [0.2] * 6, noise_floor=0.01) == []


def test_short_series_are_not_searched() -> None:
    assert detect_steps([1.0, 1.0, 2.0][: MIN_POINTS - 1]) == []


def test_scatter_is_robust_to_one_step() -> None:
    noisy = [math.log(v) for v in _series(1, 12, 0.03)]
    stepped = [v + (0.5 if i >= 6 else 0.0) for i, v in enumerate(noisy)]
    assert scatter(stepped) == pytest.approx(scatter(noisy), rel=0.5)
    assert scatter(stepped) < 0.1


def test_one_odd_point_at_either_end_is_not_a_step() -> None:
    assert detect_steps([1.2, 1.0, 1.0, 1.01, 0.99, 1.0, 1.0, 1.0]) == []
    assert detect_steps([1.0, 1.0, 1.01, 0.99, 1.0, 1.0, 1.0, 1.2]) == []
    assert [s.index for s in detect_steps([1.0, 1.0, 1.01, 0.99, 1.0, 1.0, 1.2, 1.2])] == [6]
