"""TorchScript artifacts run by the torch the worker itself imports: the default engine, on CPU or CUDA."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from ..inputs import pair_inputs
from ..operands import Operands

__all__ = ["check", "info", "operands"]


def info() -> dict[str, Any]:
    """The torch version and the int8 engines it was built with."""
    return {"torch": torch.__version__, "quantized_engines": list(torch.backends.quantized.supported_engines)}


def check(pair: dict[str, Any], device: str) -> None:
    """Raise unless the pair's ``quantized_engine`` (None: leave it as it is) is one this torch supports."""
    engine = pair["quantized_engine"]
    if engine is not None and engine not in torch.backends.quantized.supported_engines:
        supported = ", ".join(torch.backends.quantized.supported_engines)
        raise ValueError(f"quantized_engine {engine!r} is not supported here (supported: {supported})")


@contextmanager
def operands(pair: dict[str, Any], device: str, threads: int) -> Iterator[Operands]:
    """Both TorchScript files loaded onto ``device``, the pair's input(s) there (``inputs.pair_inputs``), under
    inference mode.

    int8 kernels dispatch on the quantized engine set when the model runs (fbgemm/x86 on x86, qnnpack on ARM), so
    the pair's engine is set for the pair and the previous one put back after it: a long-lived worker must not
    carry one pair's engine into the next. Threads are the request's, set once for it with ``torch.set_num_threads``.
    """
    previous = torch.backends.quantized.engine
    try:
        if pair["quantized_engine"] is not None:
            torch.backends.quantized.engine = pair["quantized_engine"]
        baseline = torch.jit.load(pair["baseline"], map_location=device).eval()
        candidate = torch.jit.load(pair["candidate"], map_location=device).eval()
        x = pair_inputs(pair, lambda tensor: tensor.to(device))
        facts = {
            "engine": {"name": "torchscript", "torch": torch.__version__, "quantized_engine": pair["quantized_engine"]}
        }
        with torch.inference_mode():
            yield Operands(baseline, candidate, x, facts)
    finally:
        torch.backends.quantized.engine = previous
