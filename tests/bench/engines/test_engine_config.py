"""Engines in the config: a matrix axis of model cells, checked at config time, out of the ids of default cells."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

from bench import engines
from bench.config.run_config import load_config
from bench.errors import BenchError
from bench.run.matrix import expand
from tests.bench.conftest import write_fast_toml

PROVIDER = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def _config(tmp_path: Path, **table: object):
    base = {"models": ["digits_cnn"], "compressors": {"none": {}}, "finetune_steps": 0}
    return load_config(write_fast_toml(tmp_path), {**base, **table})


def test_each_model_cell_is_timed_on_each_engine_and_layer_cells_on_torch(tmp_path: Path) -> None:
    config = _config(tmp_path, engines=["torchscript", "onnxruntime"], layers={"models": ["digits_cnn"]})
    cells = expand(config)
    model_cells = [cell for cell in cells if cell.kind == "model"]
    assert [cell.engine for cell in model_cells] == ["torchscript", "onnxruntime"]
    assert {cell.engine for cell in cells if cell.kind == "layers"} == {"torchscript"}
    assert config.to_json()["engines"] == ["torchscript", "onnxruntime"]


def _digest(identity: dict[str, object]) -> str:
    """A cell id as the matrix makes it: the first 16 hex digits of the SHA-256 of its canonical JSON."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def test_the_default_engine_keeps_the_cell_id_it_had_before_engines_were_an_axis(tmp_path: Path) -> None:
    torchscript, onnxruntime = (cell for cell in expand(_config(tmp_path, engines=["torchscript", "onnxruntime"])))
    assert torchscript.id == _digest({k: v for k, v in torchscript.to_json().items() if k != "engine"})
    assert onnxruntime.id == _digest(onnxruntime.to_json()) and torchscript.id != onnxruntime.id
    assert onnxruntime.label.endswith("cpu onnxruntime t=1 b=1") and torchscript.label.endswith("cpu t=1 b=1")


def test_an_engine_whose_packages_are_missing_says_how_to_install_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "onnxruntime" else find_spec(name))
    with pytest.raises(BenchError, match=r"engine 'onnxruntime' needs onnxruntime, .*pip install onnx onnxruntime"):
        _config(tmp_path, engines=["onnxruntime"])


@pytest.mark.parametrize(
    ("engines", "fragment"),
    [([], "engines must not be empty"), (["tensorrt"], "unknown engine 'tensorrt'"), ([3], "engines")],
)
def test_bad_engines_are_one_line(tmp_path: Path, engines: list[object], fragment: str) -> None:
    with pytest.raises(BenchError, match=fragment):
        _config(tmp_path, engines=engines)


@pytest.mark.parametrize(
    ("machine", "device", "reason"),
    [
        ({"onnxruntime": None, "onnxruntime_providers": []}, "cpu", "onnxruntime is not installed on the device"),
        (
            {"onnxruntime": "1.32.0", "onnxruntime_providers": ["CPUExecutionProvider"]},
            "cuda",
            "has no CUDAExecutionProvider (it has CPUExecutionProvider; pip install onnxruntime-gpu there)",
        ),
    ],
)
def test_a_device_that_cannot_run_onnx_runtime_says_why(machine: dict, device: str, reason: str) -> None:
    onnxruntime = engines.get("onnxruntime")
    assert reason in (onnxruntime.device_unavailable(machine, device) or "")
    able = {"onnxruntime": "1.32.0", "onnxruntime_providers": [PROVIDER[device]]}
    assert onnxruntime.device_unavailable(able, device) is None
    assert engines.get("torchscript").device_unavailable(machine, device) is None
