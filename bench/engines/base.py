"""What an inference engine does on the host: export a model to its artifact, and evaluate what it will run.

The timing worker loads the artifact on the device with the same engine (see `targets.worker`); the host never
times anything. An engine that cannot run a candidate says why with `EngineLimit`, and the cell is `skipped`
with that reason: a candidate is never timed as something else.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from bench.measure.accuracy import EvalSplit
from compressors import CompressorConfig, Executable

__all__ = ["Engine", "EngineLimit", "Exported", "Source"]


class EngineLimit(Exception):
    """This engine cannot run this candidate (no export, no kernel): the cell is skipped with the reason."""

    def __init__(self, engine: str, reason: str) -> None:
        super().__init__(f"{engine}: {reason}")
        self.engine = engine
        self.reason = reason


@dataclass(frozen=True)
class Source:
    """What an engine builds a candidate's artifact from.

    Attributes:
        config: The compressor config, resolved for the device.
        executable: The compressed model in the form torch executes (`CompressorConfig.finalize`).
        float_model: The float model an engine with its own int8 quantizer quantizes when the config stands for
            post-training int8 (`CompressorConfig.int8_scheme`): the model `apply` was given for static int8
            (its calibrated observers are torch's), the recovered float copy for dynamic int8.
        calibration: The real input batches torch's path observed (empty when the model has no data).
    """

    config: CompressorConfig
    executable: Executable
    float_model: nn.Module
    calibration: Sequence[torch.Tensor]


@dataclass(frozen=True)
class Exported:
    """An artifact the worker loads, and what it is.

    Attributes:
        path: The file.
        executed_as: What really executes, engine and format included (the report's "executed as").
        notes: Anything a reader must know about the execution ("" when nothing).
        quantized_engine: The `torch.backends.quantized.engine` the worker sets for torch int8 kernels, or None.
        stored_bytes: Bytes of the model as this engine stores it.
    """

    path: Path
    executed_as: str
    notes: str
    quantized_engine: str | None
    stored_bytes: int


class Engine(abc.ABC):
    """One inference engine, host side: one module per engine, one entry in `bench.engines.ENGINES`."""

    name: ClassVar[str]
    suffix: ClassVar[str]  # of its artifact files
    # Whether an artifact holds one batch size (a traced TorchScript graph may), else one serves every batch.
    batch_specific: ClassVar[bool] = True

    @abc.abstractmethod
    def unavailable(self) -> str | None:
        """Why this host cannot export for the engine (a package missing, with how to install it), or None."""

    def device_unavailable(self, machine: Mapping[str, Any], device: str) -> str | None:
        """Why a target whose worker answered `machine` cannot run the engine on `device`, or None."""
        return None

    @abc.abstractmethod
    def baseline(self, model: nn.Module, example: torch.Tensor, path: Path) -> Path:
        """Write the uncompressed reference's artifact for inputs shaped like `example`; returns its path."""

    @abc.abstractmethod
    def candidate(self, source: Source, example: torch.Tensor, path: Path) -> Exported:
        """Write a compressed candidate's artifact.

        Raises:
            EngineLimit: The engine cannot run this candidate.
        """

    @abc.abstractmethod
    def top1(self, source: Source, exported: Exported, test: EvalSplit) -> float:
        """Top-1 on `test` of what the worker will run: the artifact itself where the host can run it."""
