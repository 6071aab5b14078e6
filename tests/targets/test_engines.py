"""The worker's engines in process: the state a pair sets is put back, and what a device lacks is named."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import pytest
import torch

from bench.config.run_config import TimingConfig
from bench.errors import BenchError
from targets.worker import PAIR_DEFAULTS, TIMING_DEFAULTS
from targets.worker.engines import ENGINES, torchscript
from targets.worker.engines import onnxruntime as ort_engine
from targets.worker.protocol import validate_pair
from targets.worker.timing import time_pair

SUPPORTED = [engine for engine in torch.backends.quantized.supported_engines if engine != "none"]


@pytest.fixture
def quantized_engine() -> Iterator[tuple[str, str]]:
    """(engine in effect, another one a pair asks for); the process's engine is put back afterwards."""
    if len(SUPPORTED) < 2:
        pytest.skip(f"needs two quantized engines, this torch has {SUPPORTED}")
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = SUPPORTED[0]
    yield SUPPORTED[0], SUPPORTED[1]
    torch.backends.quantized.engine = previous


def _pair(artifacts: dict[str, str], **fields: Any) -> dict[str, Any]:
    return {
        "id": "p", "baseline": artifacts["fast"], "candidate": artifacts["slow"], "input_shape": [8, 256],
        "warmup_s": 0.01, "budget_s": 0.05, "min_rounds": 2, "max_rounds": 4, **fields,
    }  # fmt: skip


def test_a_pair_sets_its_quantized_engine_and_the_next_pair_does_not_inherit_it(
    artifacts: dict[str, str], quantized_engine: tuple[str, str]
) -> None:
    current, asked = quantized_engine
    pair = validate_pair(_pair(artifacts, quantized_engine=asked), "cpu")
    with torchscript.operands(pair, "cpu", 1) as operands:
        assert torch.backends.quantized.engine == asked
        assert operands.facts["engine"]["quantized_engine"] == asked
    assert torch.backends.quantized.engine == current
    result = time_pair(pair, "cpu", 1)
    assert result["engine"]["quantized_engine"] == asked and torch.backends.quantized.engine == current


def test_the_quantized_engine_is_restored_when_loading_fails(
    artifacts: dict[str, str], quantized_engine: tuple[str, str], tmp_path: Any
) -> None:
    current, asked = quantized_engine
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a TorchScript file")
    pair = validate_pair(_pair(artifacts, quantized_engine=asked, candidate=str(broken)), "cpu")
    with pytest.raises(RuntimeError):
        time_pair(pair, "cpu", 1)
    assert torch.backends.quantized.engine == current


def test_onnxruntime_on_cuda_without_its_provider_is_named() -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(RuntimeError, match=r"^device 'cuda' asked for, but onnxruntime .* no CUDAExecutionProvider"):
        ort_engine.check({**PAIR_DEFAULTS, "engine": "onnxruntime"}, "cuda")


def test_every_engine_has_the_interface_and_reports_without_failing() -> None:
    for name, engine in ENGINES.items():
        assert callable(engine.check) and callable(engine.operands), name
        assert isinstance(engine.info(), dict)
    assert set(ENGINES["onnxruntime"].info()) == {"onnxruntime", "onnxruntime_providers"}


def test_timing_config_defaults_and_ranges_are_the_workers() -> None:
    assert asdict(TimingConfig()) == TIMING_DEFAULTS
    assert {key: PAIR_DEFAULTS[key] for key in TIMING_DEFAULTS} == TIMING_DEFAULTS
    with pytest.raises(BenchError) as host:
        TimingConfig(min_rounds=1)
    with pytest.raises(ValueError) as worker:
        validate_pair({"id": "p", "kind": "gemm_2_4", "gemm": [8, 8, 8], "min_rounds": 1}, "cuda")
    assert str(host.value) == "timing.min_rounds must be an integer >= 2, got 1"
    assert str(worker.value) == f"pair 'p': {host.value}"
