"""The comparison's rules, cell by cell: timing noise, flags, machines, top-1, bytes, statuses and sweeps."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bench.compare import METRICS, Rules, compare_cell
from bench.compare.stats import ratio_change
from bench.records import Accuracy, Sizes
from tests.bench.record_factory import MACHINE, layers_record, model_record, sampled_timing

RULES = Rules()


def _draw(seed: int, n: int = 30, scale: float = 1e-3, sigma: float = 0.05) -> list[float]:
    return list(np.random.default_rng(seed).lognormal(np.log(scale), sigma, n))


def _pair(base_samples, cand_samples, *, base_flags=None, cand_flags=None, **fields):
    """Two records of one cell, differing in their candidate's timing samples (and in what `fields` gives the
    candidate); the reference is timed alike in both runs."""
    timed = {"reference_s": base_samples}
    base = model_record(
        "prune.unstructured", {"sparsity": 0.9}, timing=sampled_timing(base_samples, **timed, **(base_flags or {}))
    )
    cand = model_record(
        "prune.unstructured", {"sparsity": 0.9}, timing=sampled_timing(cand_samples, **timed, **(cand_flags or {}))
    )
    return base, dataclasses.replace(cand, **fields)


def test_identical_samples_are_unchanged():
    samples = _draw(1)
    base, cand = _pair(samples, samples, elapsed_s=9.0)  # another record, the same samples
    result = compare_cell(base, cand, RULES)
    assert result.verdict == "unchanged"
    assert result.metrics["latency"].value == pytest.approx(1.0)
    assert result.metrics["latency"].outcome == "unchanged"


@pytest.mark.parametrize("seed", range(20))
def test_two_draws_of_one_distribution_are_unchanged(seed):
    base, cand = _pair(_draw(2 * seed), _draw(2 * seed + 1))
    result = compare_cell(base, cand, RULES)
    assert result.verdict == "unchanged", result.why
    assert result.regressed == frozenset()


@pytest.mark.parametrize(("factor", "verdict"), [(1.2, "regressed"), (1 / 1.2, "improved")])
def test_a_20_percent_shift_is_called(factor, verdict):
    base, cand = _pair(_draw(3), [s * factor for s in _draw(4)])
    result = compare_cell(base, cand, RULES)
    assert result.verdict == verdict
    latency = result.metrics["latency"]
    assert latency.outcome == verdict
    assert latency.low is not None and latency.high is not None
    assert latency.low < latency.value < latency.high
    assert not latency.low <= 1.0 <= latency.high
    assert result.regressed == (frozenset({"latency"}) if verdict == "regressed" else frozenset())


def test_a_2_percent_shift_is_below_the_threshold_even_when_the_samples_see_it():
    base, cand = _pair(_draw(5, n=2000, sigma=0.01), [s * 1.02 for s in _draw(6, n=2000, sigma=0.01)])
    result = compare_cell(base, cand, RULES)
    latency = result.metrics["latency"]
    assert latency.p_value is not None and latency.p_value < RULES.p_threshold  # real, but too small to matter
    assert latency.value == pytest.approx(1.02, abs=0.005)
    assert result.verdict == "unchanged"


def test_a_shift_beyond_the_threshold_that_the_samples_do_not_show_is_not_called():
    # 10% apart in the medians, but the spread is 30%: Mann-Whitney cannot tell the two apart.
    base, cand = _pair(_draw(7, n=8, sigma=0.3), [s * 1.1 for s in _draw(8, n=8, sigma=0.3)])
    result = compare_cell(base, cand, RULES)
    assert result.verdict == "unchanged"
    assert "within noise" in result.why


def test_too_few_samples_for_a_rank_test_need_the_whole_interval_beyond_the_threshold():
    assert ratio_change([1.0, 1.01, 0.99], [1.2, 1.21, 1.19], 0.05, 0.002).direction == 1
    noisy = ratio_change([1.0, 1.3, 0.8], [1.2, 1.5, 0.9], 0.05, 0.002)
    assert noisy.p_value is None and noisy.direction == 0
    assert "too few for a rank test" in noisy.reason


def test_a_speedup_drop_is_a_speedup_regression():
    base = model_record(timing=sampled_timing(_draw(9), _draw(10, scale=2.0)))
    cand = model_record(timing=sampled_timing(_draw(9), _draw(11, scale=1.5)))
    result = compare_cell(base, cand, RULES)
    assert result.metrics["speedup"].outcome == "regressed"
    assert result.metrics["speedup"].value == pytest.approx(0.75, abs=0.05)
    assert " -> " in result.metrics["speedup"].shown
    assert "speedup" in result.regressed


@pytest.mark.parametrize("flag", ["busy", "noisy", "throttled"])
@pytest.mark.parametrize("side", ["base", "cand"])
def test_a_flagged_timing_on_either_side_is_inconclusive(flag, side):
    flags = {flag: True}
    base, cand = _pair(
        _draw(12),
        [s * 1.5 for s in _draw(13)],
        **{f"{side}_flags": flags},  # a regression, were it trusted
    )
    result = compare_cell(base, cand, RULES)
    assert result.verdict == "inconclusive"
    assert result.metrics["latency"].outcome == "inconclusive"
    assert result.metrics["speedup"].outcome == "inconclusive"
    assert f"{flag} in {side.upper()}" in result.why
    assert result.regressed == frozenset()


def test_a_bytes_regression_in_an_inconclusive_cell_is_still_a_regression():
    bigger = Sizes(params_total=1000, params_nonzero=1000, dense_bytes=4000, csr_bytes=9000, gzip_bytes=3600)
    base, cand = _pair(_draw(14), _draw(15), cand_flags={"busy": True}, sizes=bigger)
    result = compare_cell(base, cand, RULES)
    assert result.verdict == "regressed"
    assert result.regressed == frozenset({"size"})
    assert result.metrics["latency"].outcome == "inconclusive"


def test_other_machines_compare_speedups_only():
    other = {**MACHINE, "cpu_model": "Other CPU", "hostname": "elsewhere"}
    base = model_record(timing=sampled_timing(_draw(16), _draw(17, scale=2.0)))
    cand = model_record(machine=other, timing=sampled_timing([s * 3 for s in _draw(16)], _draw(18, scale=1.5)))
    result = compare_cell(base, cand, RULES)
    assert result.cross_machine
    assert result.metrics["latency"].outcome == "n/a"
    assert result.metrics["latency"].shown == "n/a (other machine)"
    assert result.metrics["speedup"].outcome == "regressed"
    assert result.regressed == frozenset({"speedup"})


def _with_top1(top1: float, images: int):
    accuracy = Accuracy(top1=top1, baseline=0.99, before_recovery=top1, note=None, images=images)
    return model_record(accuracy=accuracy, timing=sampled_timing(_draw(19)))


@pytest.mark.parametrize(
    ("base", "cand", "images", "outcome"),
    [
        (0.980, 0.977, 10000, "unchanged"),  # 0.3 points: within the 0.5-point tolerance
        (0.980, 0.960, 10000, "regressed"),  # 2 points, far beyond the error of 10000 images
        (0.900, 0.880, 100, "unchanged"),  # 2 points, but the error of 100 images is ~4 points each
        (0.960, 0.980, 10000, "improved"),
    ],
)
def test_top1_changes_count_beyond_the_tolerance_and_the_standard_error(base, cand, images, outcome):
    result = compare_cell(_with_top1(base, images), _with_top1(cand, images), RULES)
    accuracy = result.metrics["accuracy"]
    assert accuracy.outcome == outcome
    assert accuracy.value == pytest.approx((cand - base) * 100)
    assert ("accuracy" in result.regressed) == (outcome == "regressed")


@pytest.mark.parametrize(
    ("csr", "outcome", "shown"), [(8800, "regressed", "csr +10.0%"), (7200, "improved", "csr -10.0%")]
)
def test_every_bytes_change_is_reported(csr, outcome, shown):
    sizes = Sizes(params_total=1000, params_nonzero=1000, dense_bytes=4000, csr_bytes=csr, gzip_bytes=3600)
    base = model_record(timing=sampled_timing(_draw(20)))
    cand = dataclasses.replace(base, sizes=sizes, elapsed_s=1.0)
    result = compare_cell(base, cand, RULES)
    assert result.metrics["size"].outcome == outcome
    assert result.metrics["size"].shown == shown
    assert result.verdict == outcome


def test_the_same_record_on_both_sides_is_unchanged_whatever_its_flags():
    record = model_record(timing=sampled_timing(_draw(21), noisy=True))
    result = compare_cell(record, record, RULES)
    assert result.verdict == "unchanged"


@pytest.mark.parametrize(
    ("base_status", "cand_status", "verdict", "regresses"),
    [
        ("ok", "failed", "failed", True),
        ("failed", "failed", "failed", False),
        ("skipped", "failed", "failed", True),
        (None, "failed", "failed", True),
        ("failed", "ok", "improved", False),
        ("skipped", "skipped", "unchanged", False),
        ("ok", "skipped", "gone", False),
        ("skipped", "ok", "new", False),
        ("ok", None, "gone", False),
        (None, "ok", "new", False),
    ],
)
def test_every_pair_of_statuses_has_a_verdict(base_status, cand_status, verdict, regresses):
    def record(status):
        if status is None:
            return None
        return model_record(status=status, error=None if status == "ok" else f"RuntimeError: {status}")

    result = compare_cell(record(base_status), record(cand_status), RULES)
    assert result.verdict == verdict
    assert result.regressed_in(METRICS) == regresses
    assert result.why
    if cand_status == "failed":
        assert "RuntimeError: failed" in result.why


def test_skipped_on_both_sides_says_it_is_not_a_regression():
    result = compare_cell(model_record(status="skipped"), model_record(status="skipped"), RULES)
    assert "not a regression" in result.why


@pytest.mark.parametrize(
    ("speedups", "verdict"),
    [
        ([0.8, 0.8], "regressed"),  # every GEMM slower, their intervals apart
        ([1.25, 1.25], "improved"),
        ([1.02, 1.02], "unchanged"),  # below the threshold
        ([0.6, 1.0], "unchanged"),  # the aggregate moves, but only half the sweep's time does
    ],
)
def test_a_sweep_is_judged_by_its_aggregate_and_the_gemms_that_carry_it(speedups, verdict):
    base = layers_record("cpu", {"sparsity": 0.9}, [1.0, 1.0])
    cand = layers_record("cpu", {"sparsity": 0.9}, speedups)
    result = compare_cell(base, cand, RULES)
    assert result.verdict == verdict, result.why
    assert result.metrics["latency"].outcome == "n/a"


def test_a_flagged_sweep_is_inconclusive():
    base = layers_record("cpu", {"sparsity": 0.9}, [1.0, 1.0])
    cand = layers_record("cpu", {"sparsity": 0.9}, [0.5, 0.5])
    layers = tuple(dataclasses.replace(layer, busy=True) for layer in cand.layers)
    result = compare_cell(base, dataclasses.replace(cand, layers=layers), RULES)
    assert result.verdict == "inconclusive"


def test_rules_refuse_an_unknown_metric_and_a_threshold_out_of_range():
    from bench.errors import BenchError

    with pytest.raises(BenchError, match="accepted: latency, speedup, accuracy, size"):
        Rules(fail_on=("speed",))
    with pytest.raises(BenchError, match="--threshold"):
        Rules(threshold=1.5)
