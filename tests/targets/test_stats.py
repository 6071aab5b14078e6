"""The worker's statistics on hand-computed samples."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from targets import iqr, median, median_ci, summarize


def test_median_odd_and_even() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5


def test_iqr_interpolates_quartiles() -> None:
    assert iqr([1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx(2.0)
    # Quartiles of 1..4 by linear interpolation: 1.75 and 3.25.
    assert iqr([4.0, 3.0, 2.0, 1.0]) == pytest.approx(1.5)
    assert iqr([7.0]) == 0.0


@pytest.mark.parametrize("function", [median, iqr, median_ci])
def test_empty_sample_is_an_error(function: Callable[[list[float]], object]) -> None:
    with pytest.raises(ValueError, match="empty"):
        function([])


def test_median_ci_falls_back_to_range_for_tiny_samples() -> None:
    # (min, max) of 5 values covers the median with probability 1 - 2/32 < 0.95.
    assert median_ci([5.0, 1.0, 3.0, 2.0, 4.0]) == (1.0, 5.0)


def test_median_ci_uses_exact_binomial_ranks() -> None:
    xs = [float(v) for v in range(1, 21)]
    # n=20: P(Binomial(20, 1/2) <= 5) = 0.0207 <= 0.025 < P(<= 6), so the ranks are 6 and 15.
    assert median_ci(xs) == (6.0, 15.0)


def test_median_ci_brackets_median_and_widens_with_confidence() -> None:
    xs = [1.0 + 0.01 * ((7 * i) % 101) for i in range(101)]
    widths = []
    for confidence in (0.5, 0.8, 0.95, 0.99):
        low, high = median_ci(xs, confidence)
        assert low <= median(xs) <= high
        widths.append(high - low)
    assert widths == sorted(widths)
    assert widths[0] < widths[-1]


def test_median_ci_rejects_confidence_outside_unit_interval() -> None:
    with pytest.raises(ValueError, match="confidence"):
        median_ci([1.0, 2.0], confidence=1.0)


def test_summarize_fields() -> None:
    baseline = [2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    candidate = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    speedups = [1.8, 1.9, 2.0, 2.0, 2.1, 2.2]
    summary = summarize(baseline, candidate, speedups)
    assert summary == pytest.approx(
        {
            "baseline_median_s": 2.0,
            "baseline_iqr_s": 0.0,
            "candidate_median_s": 1.0,
            "candidate_iqr_s": 0.0,
            "speedup_median": 2.0,
            "speedup_ci_low": 1.8,
            "speedup_ci_high": 2.2,
            "ci_rel_halfwidth": 0.1,
        }
    )
