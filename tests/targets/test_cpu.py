"""CpuTarget against a real worker subprocess and real TorchScript files."""

from __future__ import annotations

import os
import platform
import signal
from collections.abc import Callable
from typing import Any

import pytest

from targets import CpuTarget, TargetError
from targets.cpu import LocalSettings

MakePair = Callable[..., dict[str, Any]]

MACHINE_KEYS = {
    "arch", "cpu_model", "cpu_count", "memory_bytes", "os", "hostname", "python", "torch", "quantized_engines", "mkl",
    "onnxruntime", "onnxruntime_providers", "cuda_device", "cuda", "cpu_freq_mhz", "governor", "thermal",
}  # fmt: skip
THERMAL_KEYS = {"temperature_c", "zones_c", "throttled", "cpu_freq_mhz"}
RESULT_KEYS = {
    "id", "iters_per_block", "baseline_s", "candidate_s", "speedups", "rounds", "stopped_by", "wall_s",
    "other_cpu_cores", "thermal_before", "thermal_after", "cooldown_waited_s", "throttled", "throttle_reason",
    "summary", "engine",
}  # fmt: skip
SUMMARY_KEYS = {
    "baseline_median_s", "baseline_iqr_s", "candidate_median_s", "candidate_iqr_s", "speedup_median",
    "speedup_ci_low", "speedup_ci_high", "ci_rel_halfwidth",
}  # fmt: skip


def test_machine_info_describes_this_host(cpu_target: CpuTarget) -> None:
    info = cpu_target.machine_info()
    assert set(info) == MACHINE_KEYS
    assert info["arch"] == platform.machine()
    assert info["cpu_count"] == os.cpu_count()
    assert info["python"] == platform.python_version()
    assert set(info["thermal"]) == THERMAL_KEYS
    assert info["cuda"] is None or info["cuda"]["name"] == info["cuda_device"]
    assert cpu_target.machine_info() is info


def test_time_pairs_returns_raw_samples_in_request_order(cpu_target: CpuTarget, make_pair: MakePair) -> None:
    pairs = [make_pair("fast", "slow"), make_pair("slow", "fast")]
    results = cpu_target.time_pairs(pairs, threads=1)
    assert [r["id"] for r in results] == ["fast-vs-slow", "slow-vs-fast"]
    for result in results:
        assert set(result) == RESULT_KEYS
        assert set(result["summary"]) == SUMMARY_KEYS
        rounds = result["rounds"]
        assert 4 <= rounds <= 400
        assert len(result["baseline_s"]) == len(result["candidate_s"]) == len(result["speedups"]) == rounds
        assert all(t > 0 for t in result["baseline_s"] + result["candidate_s"])
        ratios = [b / c for b, c in zip(result["baseline_s"], result["candidate_s"], strict=True)]
        assert result["speedups"] == pytest.approx(ratios)
        assert min(result["iters_per_block"].values()) >= 1
        assert result["stopped_by"] in {"ci", "budget", "max_rounds"}
        assert result["other_cpu_cores"] is None or result["other_cpu_cores"] >= 0
        assert set(result["thermal_before"]) == set(result["thermal_after"]) == THERMAL_KEYS
        assert result["cooldown_waited_s"] is None  # the default target does not cool down
        assert result["throttled"] is (result["throttle_reason"] is not None)
        summary = result["summary"]
        assert summary["speedup_ci_low"] <= summary["speedup_median"] <= summary["speedup_ci_high"]


def test_thirty_times_the_work_is_much_slower(cpu_target: CpuTarget, make_pair: MakePair) -> None:
    slower, faster = cpu_target.time_pairs([make_pair("fast", "slow"), make_pair("slow", "fast")], threads=1)
    assert slower["summary"]["speedup_median"] < 0.5
    assert faster["summary"]["speedup_median"] > 2.0
    # Calibration gives the slower model fewer iterations per block.
    assert slower["iters_per_block"]["candidate"] < slower["iters_per_block"]["baseline"]


def test_tiny_budget_stops_by_budget_after_min_rounds(cpu_target: CpuTarget, make_pair: MakePair) -> None:
    # A ci_rel of 1e-9 is met only if every round's speedup were bit-identical.
    (result,) = cpu_target.time_pairs([make_pair("fast", "slow", budget_s=1e-6, ci_rel=1e-9, min_rounds=5)], 1)
    assert result["stopped_by"] == "budget"
    assert result["rounds"] == 5


def test_max_rounds_caps_rounds(cpu_target: CpuTarget, make_pair: MakePair) -> None:
    (result,) = cpu_target.time_pairs([make_pair("fast", "fast", ci_rel=1e-9, min_rounds=3, max_rounds=3)], 1)
    assert result["stopped_by"] == "max_rounds"
    assert result["rounds"] == 3


def test_identical_artifacts_can_stop_on_ci(cpu_target: CpuTarget, make_pair: MakePair) -> None:
    (result,) = cpu_target.time_pairs(
        [make_pair("fast", "fast_copy", budget_s=3.0, ci_rel=0.05, min_rounds=6)], threads=1
    )
    summary = result["summary"]
    if result["stopped_by"] == "ci":
        assert summary["ci_rel_halfwidth"] <= 0.05
    else:
        assert result["stopped_by"] == "budget"
    # Same file on both sides: only a grossly broken pairing could move the median this far.
    assert 1 / 3 < summary["speedup_median"] < 3


def test_bad_request_names_the_path_and_worker_keeps_serving(
    cpu_target: CpuTarget, make_pair: MakePair, tmp_path: Any
) -> None:
    missing = str(tmp_path / "missing.pt")
    pid = cpu_target.pid
    bad = {**make_pair("fast", "slow"), "baseline": missing}
    with pytest.raises(TargetError, match="missing.pt") as info:
        cpu_target.time_pairs([bad], threads=1)
    assert "FileNotFoundError" in str(info.value)
    assert "\n" not in str(info.value)
    assert "Traceback" in info.value.detail
    (result,) = cpu_target.time_pairs([make_pair("fast", "slow")], threads=1)
    assert result["rounds"] >= 4
    assert cpu_target.pid == pid


def test_killed_worker_raises_then_restarts(make_pair: MakePair) -> None:
    with CpuTarget() as target:
        target.machine_info()
        first_pid = target.pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        with pytest.raises(TargetError, match=r"cpu worker was killed by SIGKILL \(signal 9\)"):
            target.time_pairs([make_pair("fast", "slow")], threads=1)
        assert target.pid is None
        (result,) = target.time_pairs([make_pair("fast", "slow")], threads=1)
        assert result["rounds"] >= 4
        assert target.pid not in (None, first_pid)
    assert target.pid is None


def test_hung_worker_times_out_and_is_killed() -> None:
    # Importing torch alone takes far longer than 50 ms, so the info answer cannot arrive in time.
    target = CpuTarget(settings=LocalSettings(timeout_margin_s=0.05))
    with pytest.raises(TargetError, match="timed out answering 'info'"):
        target.machine_info()
    assert target.pid is None
    target.close()
