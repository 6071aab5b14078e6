"""TorchScript: the compressed model as torch executes it (int8 on torch's quantized kernels, CSR on torch.sparse)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from bench.engines.artifacts import save_torchscript
from bench.engines.base import Engine, Exported, Source
from bench.measure.accuracy import EvalSplit, top1
from bench.measure.size import dense_bytes
from compressors.quant_int8 import quantized_engine

__all__ = ["TorchScript"]


class TorchScript(Engine):
    """Scripted (or traced) torch modules, loaded by `torch.jit.load` on the device."""

    name = "torchscript"
    suffix = "pt"

    def unavailable(self) -> str | None:
        return None

    def baseline(self, model: nn.Module, example: torch.Tensor, path: Path) -> Path:
        return save_torchscript(model, example, path)

    def candidate(self, source: Source, example: torch.Tensor, path: Path) -> Exported:
        executable = source.executable
        save_torchscript(executable.model, example, path)
        return Exported(
            path=path,
            executed_as=executable.executed_as,
            notes=executable.notes,
            quantized_engine=executable.quantized_engine,
            stored_bytes=len(dense_bytes(executable.model.state_dict())),
        )

    def top1(self, source: Source, exported: Exported, test: EvalSplit) -> float:
        # The CSR or int8 module itself is evaluated, not assumed equal to the trainable one.
        with quantized_engine(exported.quantized_engine):
            return top1(source.executable.model, test)
