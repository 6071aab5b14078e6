"""ONNX Runtime runs torchvision's transformers: ViT's attention exports (not torch's fused kernel), Swin's graph is
quantized though ONNX Runtime's symbolic shape inference gives up on it, and a quantizer that fails is the engine's
limit with the suite's sentence, not a bare exception.

torchvision's own Swin and ViT classes at toy sizes, so the structure is the real one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models.swin_transformer import SwinTransformer
from torchvision.models.vision_transformer import VisionTransformer

from bench.engines import onnx_export, ort
from bench.engines.base import EngineLimit, Source
from compressors.quant_int8 import DynamicInt8Quantization, StaticInt8Quantization

onnxruntime = pytest.importorskip("onnxruntime")

_X = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def _run(path: Path, x: torch.Tensor) -> torch.Tensor:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {onnx_export.INPUT: x.numpy()})[0])


def _tiny_vit() -> nn.Module:
    torch.manual_seed(0)
    model = VisionTransformer(16, 8, num_layers=1, num_heads=2, hidden_dim=8, mlp_dim=16, num_classes=3).eval()
    nn.init.normal_(model.heads.head.weight)  # torchvision zeroes it: every output would be 0
    return model


def _tiny_swin() -> nn.Module:
    torch.manual_seed(0)
    return SwinTransformer([2, 2], 8, [1, 1], [1, 2], [2, 2], num_classes=3).eval()


def test_vit_exports_its_attention_and_runs_the_same(tmp_path: Path) -> None:
    model = _tiny_vit()
    assert torch.backends.mha.get_fastpath_enabled()
    path = onnx_export.export_onnx(model, _X[:1], tmp_path / "vit.onnx")
    assert torch.backends.mha.get_fastpath_enabled()  # left as it was
    with torch.no_grad():
        torch.testing.assert_close(_run(path, _X), model(_X), atol=1e-4, rtol=1e-4)


def test_swin_is_quantized_static_without_symbolic_shape_inference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    monkeypatch.chdir(work)
    fp32 = onnx_export.export_onnx(_tiny_swin(), _X[:1], out / "swin.onnx")
    note = onnx_export.quantize_static_qdq(Path("../out/swin.onnx"), Path("../out/swin-int8.onnx"), [_X[:1]])
    assert note == "prepared without symbolic shape inference, which gives up on this graph"
    assert Path.cwd() == work
    # What the inference that gave up saves in the working directory (sym_shape_infer_temp.onnx) went with it.
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in out.iterdir()) == ["swin-int8.onnx", fp32.name]
    assert _run(out / "swin-int8.onnx", _X).shape == (2, 3)


def test_a_graph_ort_infers_keeps_the_default_preparation(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 3)).eval()
    fp32 = onnx_export.export_onnx(model, _X[:1], tmp_path / "cnn.onnx")
    assert onnx_export.quantize_static_qdq(fp32, tmp_path / "cnn-int8.onnx", [_X[:1]]) == ""


def test_swin_static_int8_candidate_says_how_it_was_prepared(tmp_path: Path) -> None:
    model, config = _tiny_swin(), StaticInt8Quantization(calibration_batches=1)
    executable = config.finalize(config.apply(model, _X[:1]).model)
    exported = ort.OnnxRuntime().candidate(Source(config, executable, model, ()), _X[:1], tmp_path / "c.onnx")
    assert exported.notes == (
        "ranges min-max over example input + 0 random normal inputs (no data); prepared without symbolic shape"
        " inference, which gives up on this graph"
    )
    assert not (tmp_path / "c-fp32.onnx").exists()


def test_a_quantizer_failure_is_the_engine_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fails(fp32: Path, path: Path) -> Path:
        raise RuntimeError("[ONNXRuntimeError] : 1 : FAIL : no kernel\nfor this node")

    monkeypatch.setattr(ort, "quantize_dynamic_linear", fails)
    model, config = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 3)).eval(), DynamicInt8Quantization()
    source = Source(config, config.finalize(model), model, ())
    with pytest.raises(EngineLimit) as raised:
        ort.OnnxRuntime().candidate(source, _X[:1], tmp_path / "c.onnx")
    assert raised.value.engine == "onnxruntime"
    assert raised.value.reason == (
        "ONNX Runtime's quantizer fails on this graph (RuntimeError: [ONNXRuntimeError] : 1 : FAIL : no kernel)"
    )
    assert not (tmp_path / "c-fp32.onnx").exists()
