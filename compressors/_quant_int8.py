"""The transforms of `quant.int8` and `quant.int8_dynamic`: FX graph mode static quantization, dynamic quantization
of the linear layers, and the quantized engine both are packed for."""

from __future__ import annotations

import copy
import platform
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torch.ao.nn import quantized as nnq
from torch.ao.quantization import default_dynamic_qconfig, get_default_qconfig_mapping, quantize_dynamic
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
from torch.fx import GraphModule

from compressors._direct_reads import direct_readers, read_past_reason
from compressors.base import Compressed, CompressorLimit, Executable

__all__ = [
    "check_dynamic", "convert_static", "int8_layers", "observed_batches", "prepare_static", "quantize_linears",
    "quantized_engine", "resolve_engine", "float_copy",
]  # fmt: skip

_ARM_MACHINES = ("aarch64", "arm64", "armv7l")
# Every quantized layer that computes with int8 weights; fused (ConvReLU2d, LinearReLU) and dynamic Linear
# modules subclass these.
_INT8_LAYERS = (
    nnq.Conv1d,
    nnq.Conv2d,
    nnq.Conv3d,
    nnq.ConvTranspose1d,
    nnq.ConvTranspose2d,
    nnq.ConvTranspose3d,
    nnq.Linear,
)
_FLOAT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_NO_LINEAR = "no nn.Linear layer to quantize dynamically; quant.int8_dynamic needs at least one"


def resolve_engine(engine: str, arch: str | None = None) -> str:
    """Returns the quantized engine that `engine` names for a device of architecture `arch`.

    "auto" is "qnnpack" on ARM (the only engine with ARM kernels) and "x86" elsewhere, or "fbgemm" where this
    torch build predates the "x86" engine. The model is packed here, so this torch build must have the engine
    too (x86 builds include qnnpack).

    Args:
        engine: "auto" or an engine name.
        arch: `platform.machine()` of the device that runs the model; this machine's when None.

    Raises:
        ValueError: If this torch build lacks the engine, since its kernels could neither pack nor run.
    """
    supported = torch.backends.quantized.supported_engines
    if engine == "auto":
        if (arch or platform.machine()).lower() in _ARM_MACHINES:
            engine = "qnnpack"
        else:
            engine = "x86" if "x86" in supported else "fbgemm"
    if engine not in supported:
        raise ValueError(f"engine {engine!r} is not supported by this torch build; supported: {', '.join(supported)}")
    return engine


def int8_layers(model: nn.Module) -> int:
    """Returns how many modules of `model` compute with int8 weights (quantized convs and linears)."""
    return sum(isinstance(module, _INT8_LAYERS) for module in model.modules())


@contextmanager
def quantized_engine(engine: str | None) -> Iterator[None]:
    """Sets `torch.backends.quantized.engine` for the block (None leaves it as it is), then restores the previous one.

    Weights are packed for the engine that is current when a model is converted, and run on the one current when
    it is called, so conversion and evaluation run under the target engine; restoring it keeps this process's
    other models on the engine they were packed for.
    """
    previous = torch.backends.quantized.engine
    if engine is not None:
        torch.backends.quantized.engine = engine
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous


def prepare_static(
    model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor], engine: str, batches: int
) -> Compressed:
    """`StaticInt8Quantization.apply`: a copy of `model` with observers, calibrated on `batches` batches."""
    engine = resolve_engine(engine)
    observed, source = observed_batches(example_input, calibration, batches)
    with quantized_engine(engine), torch.no_grad():
        prepared = prepare_fx(copy.deepcopy(model).eval(), get_default_qconfig_mapping(engine), (example_input,))
        for batch in observed:
            prepared(batch)
        converted = convert_fx(copy.deepcopy(prepared))
    prepared.train(model.training)
    info = {"engine": engine, "calibration": source, "quantized_modules": int8_layers(converted)}
    return Compressed(model=prepared, masks={}, info=info)


def convert_static(model: nn.Module, engine: str) -> Executable:
    """`StaticInt8Quantization.finalize`: a converted copy, packed for the engine."""
    assert isinstance(model, GraphModule), "finalize takes the model that apply prepared (an FX GraphModule)"
    engine = resolve_engine(engine)
    with quantized_engine(engine):
        converted = convert_fx(copy.deepcopy(model))
    left_float = sum(isinstance(module, _FLOAT_LAYERS) for module in converted.modules())
    notes = f"{left_float} conv/linear layers left fp32 (not quantized)" if left_float else ""
    return Executable(converted, executed_as=f"int8 kernels ({engine} engine)", notes=notes, quantized_engine=engine)


def observed_batches(
    example_input: torch.Tensor, calibration: Sequence[torch.Tensor], batches: int
) -> tuple[list[torch.Tensor], str]:
    """`StaticInt8Quantization.observed_batches`: up to `batches` of them."""
    if calibration:
        real = list(calibration)[:batches]
        return real, f"{len(real)} batches of real inputs"
    # Seeded, so the same config on the same model calibrates (and quantizes) identically every run.
    generator = torch.Generator().manual_seed(0)
    random = [
        torch.randn(example_input.shape, generator=generator, dtype=example_input.dtype) for _ in range(batches - 1)
    ]
    return [example_input, *random], f"example input + {len(random)} random normal inputs (no data)"


def check_dynamic(model: nn.Module, engine: str) -> None:
    """`DynamicInt8Quantization.check`."""
    if not any(isinstance(module, nn.Linear) for module in model.modules()):
        raise ValueError(_NO_LINEAR)
    resolve_engine(engine)


def _dynamic_plan(model: nn.Module) -> tuple[list[str], dict[str, str]]:
    """The `nn.Linear` layers dynamic int8 swaps, and those it keeps fp32 (name -> the class of the module that reads
    it) because code of `model` reads their `.weight` (attention handing its projection's weight to F.linear), which
    a dynamic int8 Linear holds only packed. torch's subclasses of Linear are not in its mapping and stay fp32."""
    linears = [name for name, module in model.named_modules() if type(module) is nn.Linear]
    readers = direct_readers(model, linears) or {}
    return [name for name in linears if name not in readers], readers


def float_copy(model: nn.Module, engine: str) -> Compressed:
    """`DynamicInt8Quantization.apply`: a float copy and the facts of what `finalize` will quantize."""
    check_dynamic(model, engine)
    swapped, kept = _dynamic_plan(model)
    info = {"engine": resolve_engine(engine), "quantized_modules": len(swapped), "kept_fp32": sorted(kept)}
    return Compressed(model=copy.deepcopy(model), masks={}, info=info)


def quantize_linears(model: nn.Module, engine: str) -> Executable:
    """`DynamicInt8Quantization.finalize`: every `nn.Linear` swapped for a dynamic int8 Linear, but those whose
    `.weight` the model's own code reads.

    Raises:
        CompressorLimit: Every `nn.Linear` of the model is read that way, so nothing would run in int8.
    """
    engine = resolve_engine(engine)
    swapped, kept = _dynamic_plan(model)
    reason = read_past_reason(kept.values(), ["Linear"], "a dynamic int8 Linear")
    if kept and not swapped:
        raise CompressorLimit("quantize", f"{reason}; no other nn.Linear is left to quantize")
    # A module name maps to None: propagate_qconfig_ lets a name override the type, so those layers stay fp32.
    spec: dict[type[nn.Module] | str, object] = {nn.Linear: default_dynamic_qconfig, **dict.fromkeys(kept)}
    with quantized_engine(engine):
        quantized = quantize_dynamic(model, spec, dtype=torch.qint8)
    return Executable(
        quantized,
        executed_as=f"int8 dynamic (Linear only, {engine} engine); other layers fp32",
        notes=f"{len(kept)} Linear layers left fp32 ({reason})" if kept else "",
        quantized_engine=engine,
    )
