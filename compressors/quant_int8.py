"""`quant.int8` and `quant.int8_dynamic`: post-training int8 quantization run on torch's quantized CPU kernels.

Static quantization (FX graph mode) observes activation ranges on calibration batches and runs whole conv/linear
chains in int8, residual adds included; dynamic quantization stores `nn.Linear` weights in int8 and quantizes
activations on the fly, leaving every other layer in fp32. Both are packed for one quantized engine, which the
timing worker must set before loading, so the engine is part of the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Self

from compressors._checks import check_choice
from compressors._lazy import lazy_exports
from compressors.base import CompressorConfig
from compressors.presentation import Presentation
from compressors.registry import register

if TYPE_CHECKING:
    import torch
    from torch import nn

    from compressors._quant_int8 import int8_layers, quantized_engine, resolve_engine
    from compressors.base import Compressed, Executable

__all__ = ["DynamicInt8Quantization", "StaticInt8Quantization", "int8_layers", "quantized_engine", "resolve_engine"]

__getattr__ = lazy_exports(__name__, "compressors._quant_int8", ("int8_layers", "quantized_engine", "resolve_engine"))

_ENGINES = ("auto", "x86", "fbgemm", "qnnpack", "onednn")


@dataclass(frozen=True)
class _PacksForAnEngine(CompressorConfig):
    """The device-dependent choice of the int8 configs: "auto" means the engine of the device that runs them."""

    engine: str

    def for_device(self, arch: str) -> Self:
        """This config with "auto" resolved for `arch`, so an ARM device gets a model packed for qnnpack."""
        if self.engine != "auto":
            return self
        from compressors._quant_int8 import resolve_engine

        return dataclasses.replace(self, engine=resolve_engine("auto", arch))


_MAX_CALIBRATION_BATCHES = 256
"""Activation ranges settle within tens of batches; without data each batch is a random input held in memory,
so a count with extra zeros would fill it."""


def _check_count(field: str, value: object) -> int:
    """Checks that `value` is an integer in 1.._MAX_CALIBRATION_BATCHES (bools refused) and returns it.

    Raises:
        ValueError: If it is not.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_CALIBRATION_BATCHES:
        raise ValueError(f"{field} must be an integer in 1..{_MAX_CALIBRATION_BATCHES}, got {value!r}")
    return value


@register("quant.int8")
@dataclass(frozen=True)
class StaticInt8Quantization(_PacksForAnEngine):
    """Post-training static int8 quantization of the whole model (FX graph mode).

    Weights are quantized per output channel and activations per tensor, with the default qconfig of the
    engine; the output is dequantized, so the model still returns float.

    Attributes:
        engine: Quantized engine to pack for and run on: "auto" (see `resolve_engine`), "x86", "fbgemm",
            "qnnpack" or "onednn". It also picks the observers (x86 and fbgemm reduce activation range by a bit
            to avoid overflow in their kernels), so it changes what `apply` produces.
        calibration_batches: How many batches `apply` observes to fix activation ranges (>= 1).
    """

    # How far the int8 output may drift from the float one, relative to the output scale (tests use
    # atol = finalize_atol * max(1, max |y|)). Measured on seeded random-weight models, x86 and qnnpack, with
    # and without real calibration: the worst element is off by 1.5-9% of max |y| (MNIST CNN, max |y| 0.18;
    # resnet18 at 64x64, max |y| 1.7); 0.1 * max(1, max |y|) leaves about 2x room on resnet18.
    finalize_atol: ClassVar[float] = 0.1
    # Training the calibrated model would move weights under observers whose ranges no longer fit them; this is
    # post-training quantization, so it is measured as calibrated.
    recoverable = False
    int8_scheme = "static"
    presentation = Presentation(short="int8", family="quantization")

    engine: str = "auto"
    calibration_batches: int = 8

    def __post_init__(self) -> None:
        check_choice("engine", self.engine, _ENGINES)
        _check_count("calibration_batches", self.calibration_batches)

    def check(self, model: nn.Module) -> None:
        """Raises ValueError if this torch build lacks the engine."""
        from compressors._quant_int8 import resolve_engine

        resolve_engine(self.engine)

    def apply(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor] = ()
    ) -> Compressed:
        """Inserts observers into a copy of `model` and calibrates them.

        The copy is traced in eval mode, because post-training fusion folds BatchNorm into the preceding conv
        only then; the calibrated model is handed back in `model`'s training mode. Fine-tuning it trains the
        folded convs (no BatchNorm left), and its observers keep recording in every forward pass, so the
        activation ranges `finalize` uses span everything seen since calibration and miss the last step
        unless a forward pass (an evaluation) follows it.

        Args:
            model: The float model; not mutated. It must be symbolically traceable by torch.fx.
            example_input: Traced with; when `calibration` is empty, also the first calibration batch.
            calibration: Real input batches; the first `calibration_batches` are observed. When empty, the
                example input and seeded random normal batches of its shape are observed instead, which
                `info["calibration"]` says.

        Returns:
            The prepared model (a float `GraphModule` with observers, same outputs as `model`; `finalize`
            converts it) and info with the resolved `engine`, the `calibration` source and `quantized_modules`,
            the number of int8 conv/linear modules after conversion.

        Raises:
            ValueError: If this torch build lacks the engine.
        """
        from compressors._quant_int8 import prepare_static

        return prepare_static(model, example_input, calibration, self.engine, self.calibration_batches)

    def finalize(self, model: nn.Module) -> Executable:
        """Converts a copy of the prepared model to int8 modules packed for the engine.

        `notes` counts conv/linear layers that conversion left in fp32, since their time is not an int8 time.
        """
        from compressors._quant_int8 import convert_static

        return convert_static(model, self.engine)

    def observed_batches(
        self, example_input: torch.Tensor, calibration: Sequence[torch.Tensor]
    ) -> tuple[list[torch.Tensor], str]:
        """Returns the batches to observe and how to describe them in `info` (an engine quantizing on its own
        observes the same ones)."""
        from compressors._quant_int8 import observed_batches

        return observed_batches(example_input, calibration, self.calibration_batches)


@register("quant.int8_dynamic")
@dataclass(frozen=True)
class DynamicInt8Quantization(_PacksForAnEngine):
    """Dynamic int8 quantization of `nn.Linear` layers; every other layer runs in fp32.

    Linear weights are stored in int8 (per tensor); each call quantizes the activations with a range measured
    on that input, so no calibration is needed. Convolutions are not touched: the speed-up, if any, comes only
    from the linear layers.

    Attributes:
        engine: Quantized engine to pack for and run on: "auto" (see `resolve_engine`), "x86", "fbgemm",
            "qnnpack" or "onednn".
    """

    execution_fields = ("engine",)
    int8_scheme = "dynamic"
    # As for quant.int8. Measured on seeded random-weight models: the worst element is off by 1-2% of
    # max |y| (MNIST CNN, both Linear layers quantized; resnet18, only the classifier); 0.05 leaves 2x room.
    finalize_atol: ClassVar[float] = 0.05
    presentation = Presentation(short="int8 dyn", family="quantization")

    engine: str = "auto"

    def __post_init__(self) -> None:
        check_choice("engine", self.engine, _ENGINES)

    def check(self, model: nn.Module) -> None:
        """Raises ValueError if `model` has no `nn.Linear` or this torch build lacks the engine."""
        from compressors._quant_int8 import check_dynamic

        check_dynamic(model, self.engine)

    def apply(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor] = ()
    ) -> Compressed:
        """Returns a float copy of `model`: dynamic quantization happens in `finalize`, so fine-tuning sees fp32.

        Args:
            model: The float model; not mutated.
            example_input: Unused: nothing is traced or calibrated.
            calibration: Unused: activation ranges are measured per call.

        Returns:
            The copy and info with the resolved `engine`, `quantized_modules`, the number of `nn.Linear`
            layers `finalize` will quantize, and `kept_fp32`, the names of those it keeps fp32 because the model's
            own code reads their `.weight` (Swin's attention projections).

        Raises:
            ValueError: If `model` has no `nn.Linear` or this torch build lacks the engine.
        """
        from compressors._quant_int8 import float_copy

        return float_copy(model, self.engine)

    def finalize(self, model: nn.Module) -> Executable:
        """Returns an eval-mode copy of `model` with every `nn.Linear` swapped for a dynamic int8 Linear, but those
        whose `.weight` the model's own code reads: a dynamic int8 Linear holds its weight packed, so the reader would
        get no tensor. The notes count them.

        Raises:
            CompressorLimit: Every `nn.Linear` is read that way.
        """
        from compressors._quant_int8 import quantize_linears

        return quantize_linears(model, self.engine)
