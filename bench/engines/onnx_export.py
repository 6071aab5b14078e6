"""Torch modules -> ONNX files that ONNX Runtime loads, and ONNX Runtime's own int8 quantization of them."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.engines.onnx_subgraphs import localize_weights

__all__ = ["OPSET", "export_onnx", "quantize_static_qdq", "quantize_dynamic_linear"]

OPSET = 17
"""ONNX opset of every export: per-channel QDQ needs >= 13, and 17 loads in ONNX Runtime releases back to 1.15,
which an older board may have."""

INPUT = "input"
"""The graph input's name, which the worker feeds (see `targets.worker`)."""


@contextmanager
def _stdout_discarded() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null meanwhile: the exporter's C++ side prints the whole graph there when a
    module has no ONNX form, which `contextlib.redirect_stdout` cannot catch."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's deprecation warnings and graph dumps and the quantizer's logging, which no reader
    acts on and which would break the run's progress lines."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), _stdout_discarded():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


@contextmanager
def _attention_fast_path_off() -> Iterator[None]:
    """Turn off torch's fused attention fast path meanwhile: in eval mode without gradients, MultiheadAttention (and
    so torchvision's ViT) runs `aten::_native_multi_head_attention`, which the TorchScript-based exporter has no ONNX
    form for; the regular path computes the same attention from ops it exports."""
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Export `model` with a dynamic batch axis, so one file serves every batch size and the host's evaluation.

    The TorchScript-based exporter is used: it exports the suite's modules in a fraction of a second, where the
    `torch.export` one takes seconds per model and needs onnxscript. A scripted module keeps its branches as `If`
    nodes, whose weights then go into the branches that read them (see `onnx_subgraphs`).

    Raises:
        Exception: Whatever the exporter raises for a module it cannot express (sparse tensors, for instance).
    """
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    axes = {INPUT: {0: "batch"}, "output": {0: "batch"}}
    with _quiet(), torch.no_grad(), _attention_fast_path_off():
        torch.onnx.export(
            model, (example,), str(path), dynamo=False, opset_version=OPSET,
            input_names=[INPUT], output_names=["output"], dynamic_axes=axes,
        )  # fmt: skip
    if isinstance(model, torch.jit.ScriptModule):
        localize_weights(path)
    return path


class _Batches:
    """The calibration batches as ONNX Runtime's `CalibrationDataReader` asks for them: one feed at a time."""

    def __init__(self, batches: Sequence[torch.Tensor]) -> None:
        self._feeds = iter([{INPUT: batch.detach().float().numpy()} for batch in batches])

    def get_next(self) -> dict[str, Any] | None:
        return next(self._feeds, None)


@contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    """Work in `path` meanwhile: ONNX Runtime's symbolic shape inference, where it gives up, saves the graph as
    `sym_shape_infer_temp.onnx` with its weights beside it (a file as large as the model) in the working directory,
    and leaves them there. The host does its work at one thread, so nothing else sees the change."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def quantize_static_qdq(fp32: Path, path: Path, batches: Sequence[torch.Tensor]) -> str:
    """ONNX Runtime's static int8 quantization: QDQ format, per-channel int8 weights, uint8 activations.

    uint8 activations with int8 weights (U8S8): with int8 activations (S8S8) resnet18 ran 2.3x slower at one
    thread on an x86 CPU with AVX-512 VNNI, 14.1 ms against 6.2 ms, hardly faster than fp32 (16.7 ms). Ranges
    are min-max over `batches`, after ONNX Runtime's own pre-processing (shape inference, graph optimization),
    as its quantization guide prescribes. Its symbolic shape inference gives up on some graphs (torchvision's
    Swin: "Incomplete symbolic shape inference"); those are prepared with the pre-processor's own option to skip
    that step, ONNX's shape inference and the graph optimization still run.

    Returns:
        A note on how the graph was prepared where it departs from the guide's default, else "".
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_static  # noqa: PLC0415

    fp32, path = fp32.resolve(), path.resolve()
    prepared = path.with_name(f"{path.stem}-preprocessed.onnx")
    note = ""
    with _quiet():
        with (
            tempfile.TemporaryDirectory(prefix="ort-prep-", dir=path.parent) as scratch,
            _working_directory(Path(scratch)),
        ):
            try:
                quant_pre_process(str(fp32), str(prepared))
            except Exception:  # noqa: BLE001 - symbolic shape inference raises a bare Exception when it gives up
                quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
                note = "prepared without symbolic shape inference, which gives up on this graph"
        quantize_static(
            str(prepared), str(path), _Batches(batches), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        )  # fmt: skip
    prepared.unlink(missing_ok=True)
    return note


def quantize_dynamic_linear(fp32: Path, path: Path) -> Path:
    """ONNX Runtime's dynamic int8 quantization of the linear layers (MatMul, Gemm), as torch's dynamic int8 does:
    int8 weights per tensor, activations quantized per call; convolutions stay fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: PLC0415

    with _quiet():
        quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
    return path
