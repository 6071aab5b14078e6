"""CudaTarget and the worker's 2:4 semi-structured GEMM pairs: what holds without a GPU, and real timings with one."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from targets import CudaTarget, TargetError
from targets._zipapp import worker_zipapp
from targets.worker.gemm_2_4 import mask_2_4, padded_gemm

MakePair = Callable[..., dict[str, Any]]

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device visible to torch")
needs_no_cuda = pytest.mark.skipif(HAS_CUDA, reason="checks the behaviour of a machine without a CUDA device")
AMPERE = HAS_CUDA and torch.cuda.get_device_capability() >= (8, 0)
needs_ampere = pytest.mark.skipif(
    not AMPERE, reason="needs a CUDA device of compute capability >= 8.0 (sparse tensor cores)"
)
needs_pre_ampere = pytest.mark.skipif(
    not HAS_CUDA or AMPERE, reason="needs a CUDA device older than compute capability 8.0"
)


def _converse(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Send ``requests`` to a fresh worker zipapp, then end of input; return its responses."""
    done = subprocess.run(
        [sys.executable, str(worker_zipapp())],
        input="".join(json.dumps(request) + "\n" for request in requests),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def _gemm_pair(gemm: list[int], **options: Any) -> dict[str, Any]:
    return {
        "id": "gemm",
        "kind": "gemm_2_4",
        "gemm": gemm,
        "warmup_s": 0.05,
        "budget_s": 0.5,
        "min_rounds": 4,
        **options,
    }


@pytest.fixture(scope="module")
def cuda_target() -> Iterator[CudaTarget]:
    with CudaTarget() as target:
        yield target


@needs_no_cuda
def test_cuda_target_is_unavailable_and_names_the_torch_build() -> None:
    available, reason = CudaTarget().available()
    assert available is False
    assert reason.startswith("no CUDA device visible to torch")
    assert f"torch {torch.__version__}" in reason
    assert ("CUDA build" in reason) if torch.version.cuda else ("CPU-only build" in reason)


@needs_no_cuda
def test_worker_answers_a_cuda_request_with_a_clear_error(artifacts: dict[str, str]) -> None:
    pair = {"id": "p", "baseline": artifacts["fast"], "candidate": artifacts["slow"], "input_shape": [8, 256]}
    (response,) = _converse([{"op": "time", "device": "cuda", "pairs": [pair]}])
    assert response["ok"] is False
    assert response["error"] == "RuntimeError: device 'cuda' asked for, but torch.cuda.is_available() is False here"


def test_worker_validates_gemm_2_4_pairs_before_timing(artifacts: dict[str, str]) -> None:
    artifact_pair = {"id": "p", "baseline": artifacts["fast"], "candidate": artifacts["slow"], "input_shape": [8, 256]}
    requests = [
        {"op": "time", "device": "cpu", "pairs": [artifact_pair, _gemm_pair([64, 64, 8])]},
        {"op": "time", "pairs": [{**_gemm_pair([64, 64, 8]), "baseline": artifacts["fast"]}]},
        {"op": "time", "pairs": [{**artifact_pair, "kind": "gemm_3_4"}]},
        {"op": "time", "pairs": [_gemm_pair([64, 0, 8])]},
        {"op": "time", "pairs": [_gemm_pair([64, 64, 8], quantized_engine="qnnpack")]},
    ]
    on_cpu, extra_field, bad_kind, bad_gemm, engine = _converse(requests)
    assert all(r["ok"] is False and "\n" not in r["error"] for r in (on_cpu, extra_field, bad_kind, bad_gemm, engine))
    assert on_cpu["error"] == "ValueError: gemm_2_4 pairs run on device 'cuda' only, got 'cpu'"
    assert extra_field["error"] == "ValueError: pair 'gemm' has unknown field(s) baseline"
    assert bad_kind["error"] == "ValueError: pair kind must be one of artifacts, stream, gemm_2_4, got 'gemm_3_4'"
    assert bad_gemm["error"].startswith("ValueError: gemm must be [m, k, n], three positive integers")
    assert engine["error"].startswith("ValueError: quantized_engine applies to artifact pairs, not gemm_2_4")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_mask_2_4_keeps_the_two_largest_of_every_four(dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(24, 64, generator=generator).to(dtype)
    mask = mask_2_4(weight)
    assert mask.dtype == torch.bool and mask.shape == weight.shape
    groups, kept = weight.abs().reshape(24, 16, 4), mask.reshape(24, 16, 4)
    assert (kept.sum(dim=-1) == 2).all()
    smallest_kept = groups.masked_fill(~kept, float("inf")).amin(dim=-1)
    largest_dropped = groups.masked_fill(kept, -1.0).amax(dim=-1)
    assert (smallest_kept >= largest_dropped).all()


def test_mask_2_4_on_a_known_row_and_bad_shapes() -> None:
    weight = torch.tensor([[0.1, -3.0, 2.0, 0.5, 4.0, 0.0, -0.2, -5.0]])
    assert mask_2_4(weight).tolist() == [[False, True, True, False, True, False, False, True]]
    for shape in [(4, 6), (8,), (2, 4, 4)]:
        with pytest.raises(ValueError, match="multiple of 4 columns"):
            mask_2_4(torch.ones(shape))


@pytest.mark.parametrize(
    ("gemm", "padded"),
    [
        ([4096, 4096, 4096], [4096, 4096, 4096]),
        ([16, 9, 64], [32, 64, 64]),
        ([1000, 512, 1], [1024, 512, 8]),
        ([33, 65, 9], [64, 128, 16]),
    ],
)
def test_padded_gemm_rounds_up_to_the_semi_structured_multiples(gemm: list[int], padded: list[int]) -> None:
    assert padded_gemm(gemm) == padded


@needs_cuda
def test_cuda_target_times_artifacts_on_the_gpu(cuda_target: CudaTarget, make_pair: MakePair) -> None:
    assert cuda_target.available() == (True, "")
    assert cuda_target.machine_info()["cuda"]["name"] == torch.cuda.get_device_name()
    (result,) = cuda_target.time_pairs([make_pair("fast", "slow")], threads=1)
    assert result["rounds"] >= 4
    assert result["summary"]["speedup_median"] < 0.5


@needs_ampere
def test_gemm_2_4_pair_times_dense_against_semi_structured(cuda_target: CudaTarget) -> None:
    (result,) = cuda_target.time_pairs([_gemm_pair([4096, 4096, 4096])], threads=1)
    assert result["rounds"] >= 4
    assert result["gemm"] == result["gemm_padded"] == [4096, 4096, 4096]
    assert result["backend"] in {"cusparselt", "cutlass"}
    assert len(result["speedups"]) == result["rounds"] and all(s > 0 for s in result["speedups"])


@needs_ampere
def test_gemm_2_4_pair_reports_the_padded_shape(cuda_target: CudaTarget) -> None:
    (result,) = cuda_target.time_pairs([_gemm_pair([100, 300, 3], budget_s=0.1)], threads=1)
    assert result["gemm"] == [100, 300, 3] and result["gemm_padded"] == [128, 320, 8]


@needs_pre_ampere
def test_gemm_2_4_pair_fails_clearly_before_ampere(cuda_target: CudaTarget) -> None:
    with pytest.raises(TargetError, match=r"needs compute capability >= 8\.0"):
        cuda_target.time_pairs([_gemm_pair([4096, 4096, 4096])], threads=1)
