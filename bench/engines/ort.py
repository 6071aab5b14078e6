"""ONNX Runtime: the compressed model exported to ONNX, int8 by ONNX Runtime's own quantizer.

A candidate ONNX cannot express (CSR modules: sparse tensors have no ONNX form) or that ONNX Runtime cannot load
is skipped with the reason. torch's int8 modules are not exported: for `quant.int8` and `quant.int8_dynamic`
ONNX Runtime quantizes the float model itself, calibrated on the same batches as torch's path, because that is
what a user deploying on ONNX Runtime runs.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.engines.base import Engine, EngineLimit, Exported, Source
from bench.engines.onnx_export import INPUT, export_onnx, quantize_dynamic_linear, quantize_static_qdq
from bench.errors import one_line
from bench.measure.accuracy import EvalSplit
from compressors.quant_int8 import StaticInt8Quantization

__all__ = ["OnnxRuntime"]

_INSTALL = "pip install onnx onnxruntime"
_EVAL_BATCH = 500


def _session(path: Path) -> Any:
    """A CPU session on the host with ONNX Runtime's full graph optimization, as the worker runs it."""
    import onnxruntime  # noqa: PLC0415 - optional: only runs that ask for the engine import it

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: its warnings about unused initializers concern no reader
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxRuntime(Engine):
    """ONNX files timed in an `onnxruntime.InferenceSession` on the device (CPU provider, or CUDA's on a GPU)."""

    name = "onnxruntime"
    suffix = "onnx"
    batch_specific = False

    def unavailable(self) -> str | None:
        missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
        if missing:
            return f"engine '{self.name}' needs {' and '.join(missing)}, not installed here: {_INSTALL}"
        return None

    def device_unavailable(self, machine: Mapping[str, Any], device: str) -> str | None:
        if not machine.get("onnxruntime"):
            return "onnxruntime is not installed on the device (pip install onnxruntime there)"
        providers = list(machine.get("onnxruntime_providers") or ())
        if device == "cuda" and "CUDAExecutionProvider" not in providers:
            return (
                f"ONNX Runtime on the device has no CUDAExecutionProvider (it has {', '.join(providers) or 'none'};"
                " pip install onnxruntime-gpu there)"
            )
        return None

    def baseline(self, model: nn.Module, example: torch.Tensor, path: Path) -> Path:
        return export_onnx(model, example, path)

    def candidate(self, source: Source, example: torch.Tensor, path: Path) -> Exported:
        scheme = source.config.int8_scheme
        executable = source.executable
        if scheme is None and executable.quantized_engine is not None:
            raise EngineLimit(
                self.name,
                "torch's int8 modules have no ONNX export; ONNX Runtime runs int8 through its own quantizer"
                " (quant.int8, quant.int8_dynamic)",
            )
        fp32 = path.with_name(f"{path.stem}-fp32.onnx") if scheme else path
        try:
            export_onnx(source.float_model if scheme else executable.model, example, fp32)
        except Exception as error:  # noqa: BLE001 - any exporter failure means: no ONNX form of this candidate
            reason = f"{executable.executed_as} cannot be exported to ONNX ({one_line(error)})"
            raise EngineLimit(self.name, reason) from None
        executed_as, notes = f"{executable.executed_as}, on ONNX Runtime", executable.notes
        if scheme:
            try:
                executed_as, notes = self._quantized(scheme, source, example, fp32, path)
            finally:
                fp32.unlink(missing_ok=True)
        try:
            _session(path)
        except Exception as error:  # noqa: BLE001 - a graph ONNX Runtime cannot load has no kernel here
            raise EngineLimit(self.name, f"ONNX Runtime cannot load the exported graph ({one_line(error)})") from None
        return Exported(path, executed_as, notes, quantized_engine=None, stored_bytes=path.stat().st_size)

    def _quantized(self, scheme: str, source: Source, example: torch.Tensor, fp32: Path, path: Path) -> tuple[str, str]:
        """ONNX Runtime's own int8 form of the float export `fp32`, written to `path`: what executes, and its notes.

        Raises:
            EngineLimit: The quantizer fails on this graph, so ONNX Runtime has no int8 form of it here.
        """
        if scheme == "static":
            assert isinstance(source.config, StaticInt8Quantization)
            batches, described = source.config.observed_batches(example, source.calibration)
        try:
            if scheme == "static":
                prepared = quantize_static_qdq(fp32, path, batches)
                executed_as = "int8 QDQ (ONNX Runtime static quantization: per-channel int8 weights, uint8 activations)"
                return executed_as, "; ".join(filter(None, [f"ranges min-max over {described}", prepared]))
            quantize_dynamic_linear(fp32, path)
        except Exception as error:  # noqa: BLE001 - whatever the quantizer raises: it has no int8 form of this graph
            raise EngineLimit(self.name, f"ONNX Runtime's quantizer fails on this graph ({one_line(error)})") from None
        return "int8 dynamic (ONNX Runtime, MatMul/Gemm only); other layers fp32", ""

    def top1(self, source: Source, exported: Exported, test: EvalSplit) -> float:
        session = _session(exported.path)
        correct = total = 0
        for images, labels in test.batches(_EVAL_BATCH):
            (logits,) = session.run(None, {INPUT: images.float().numpy()})
            correct += int((torch.from_numpy(logits).argmax(dim=1) == labels).sum())
            total += len(labels)
        return correct / total
