"""Stream pairs: each of a file's real inputs timed alone at batch 1, for models whose work depends on the input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from bench.engines.onnx_export import export_onnx
from targets import CpuTarget
from targets.worker.inputs import load_inputs
from targets.worker.protocol import validate_pair
from targets.worker.stats import bootstrap_ratio_ci, distribution, percentile
from targets.worker.timing import time_pair

FEATURES = 64
LONG_PATH = 40


class _Branchy(nn.Module):
    """One layer for an input whose sum is positive, LONG_PATH chained layers otherwise: the work depends on it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(FEATURES, FEATURES)
        self.long_path = LONG_PATH

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(x.sum() > 0):
            return self.fc(x)
        for _ in range(self.long_path):
            x = self.fc(x)
        return x


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A scripted baseline (always one layer), the branchy candidate, and 8 inputs: even rows short, odd long."""
    folder = tmp_path_factory.mktemp("stream")
    torch.manual_seed(0)
    baseline = nn.Sequential(nn.Linear(FEATURES, FEATURES))
    paths = {"baseline": str(folder / "baseline.pt"), "candidate": str(folder / "candidate.pt")}
    torch.jit.script(baseline).save(paths["baseline"])
    torch.jit.script(_Branchy()).save(paths["candidate"])
    rows = torch.rand(8, FEATURES) + 0.1
    rows[1::2] *= -1
    paths["inputs"] = str(folder / "inputs.pt")
    torch.save(rows, paths["inputs"])
    return paths


def _pair(paths: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "id": "s", "kind": "stream", **paths, "warmup_s": 0.01, "budget_s": 0.05, "min_rounds": 3, "max_rounds": 5,
        **fields,
    }  # fmt: skip


def test_a_stream_pair_times_every_input_alone_and_keeps_each_ones_median(stream: dict[str, Any]) -> None:
    result = time_pair(validate_pair(_pair(stream), "cpu"), "cpu", 1)
    assert result["inputs"] == 8
    assert len(result["baseline_inputs_s"]) == len(result["candidate_inputs_s"]) == 8
    assert 3 <= result["rounds"] <= 5 and result["rounds"] == len(result["speedups"]) == len(result["baseline_s"])
    assert result["iters_per_block"] == {"baseline": 1, "candidate": 1}
    assert result["stopped_by"] in ("ci", "budget", "max_rounds")
    candidate = result["candidate_inputs_s"]
    # The inputs that take the long path (odd rows) cost the candidate more than the ones that leave at once.
    assert min(candidate[1::2]) > max(candidate[0::2])
    # A round's figure is its mean over the inputs, so the per-input medians bracket it.
    assert min(candidate) <= result["summary"]["candidate_median_s"] <= max(candidate)


def test_the_stream_pair_goes_through_the_zipapp_worker(stream: dict[str, Any], cpu_target: CpuTarget) -> None:
    (result,) = cpu_target.time_pairs([_pair(stream)], threads=1)
    assert result["inputs"] == 8 and len(result["candidate_inputs_s"]) == 8
    assert result["engine"]["name"] == "torchscript"


def test_a_stream_pair_runs_on_onnxruntime(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    paths = {}
    for name, model in (("baseline", nn.Linear(FEATURES, 3)), ("candidate", nn.Linear(FEATURES, 3))):
        paths[name] = str(tmp_path / f"{name}.onnx")
        export_onnx(model, torch.randn(1, FEATURES), Path(paths[name]))
    paths["inputs"] = str(tmp_path / "inputs.pt")
    torch.save(torch.randn(4, FEATURES), paths["inputs"])
    result = time_pair(validate_pair(_pair(paths, engine="onnxruntime"), "cpu"), "cpu", 1)
    assert result["inputs"] == 4 and result["engine"]["name"] == "onnxruntime"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"inputs": None}, r"^pair is missing inputs$"),
        ({"input_shape": [1, FEATURES]}, r"^pair 's' has unknown field\(s\) input_shape$"),
        ({"inputs": "/nonexistent/inputs.pt"}, r"^inputs file not found: /nonexistent/inputs.pt$"),
    ],
)
def test_a_bad_stream_pair_is_refused_before_timing(
    stream: dict[str, Any], change: dict[str, Any], message: str
) -> None:
    pair = {key: value for key, value in {**_pair(stream), **change}.items() if value is not None}
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        validate_pair(pair, "cpu")


def test_an_inputs_file_without_a_float_tensor_is_named(tmp_path: Path) -> None:
    path = tmp_path / "labels.pt"
    torch.save(torch.arange(4), path)
    with pytest.raises(ValueError, match=r"must hold a float tensor \(N, \.\.\.\) with N >= 1, got a tensor of shape"):
        load_inputs(str(path))


def test_distribution_and_bootstrap_of_a_known_sample() -> None:
    xs = [float(v) for v in range(1, 101)]
    assert distribution(xs) == {"mean_s": 50.5, "p50_s": 50.5, "p90_s": 90.1, "p99_s": 99.01}
    assert percentile([3.0], 99.0) == 3.0
    # The same sample on both sides: every resample's ratio is exactly 1.
    assert bootstrap_ratio_ci(xs, xs, distribution_mean, resamples=50) == (1.0, 1.0)
    low, high = bootstrap_ratio_ci([2 * x for x in xs], xs, distribution_mean, resamples=200)
    assert low == pytest.approx(2.0) and high == pytest.approx(2.0)
    low, high = bootstrap_ratio_ci(xs, [x + (x % 7) for x in xs], distribution_mean, resamples=200)
    assert low < high < 1.0


def distribution_mean(xs: Any) -> float:
    return sum(xs) / len(xs)


def test_a_stream_pair_runs_on_cuda(stream: dict[str, Any]) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    result = time_pair(validate_pair(_pair(stream), "cuda"), "cuda", 1)
    assert result["inputs"] == 8 and min(result["candidate_inputs_s"][1::2]) > max(result["candidate_inputs_s"][0::2])


def test_a_stream_too_slow_for_its_rounds_stops_after_two_past_twice_the_budget(stream: dict[str, Any]) -> None:
    pair = _pair(stream, budget_s=1e-6, min_rounds=50, max_rounds=100, ci_rel=1e-9)
    result = time_pair(validate_pair(pair, "cpu"), "cpu", 1)
    assert result["rounds"] == 2 and result["stopped_by"] == "budget"
