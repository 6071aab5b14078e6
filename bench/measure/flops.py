"""Dense and effective multiply-accumulates.

Dense MACs come from `torch.utils.flop_counter.FlopCounterMode` on a real forward pass. Effective MACs count
what a perfect sparse kernel would do: each conv or linear layer's MACs scaled by its weight density (non-zeros x
output positions), every other op at full cost. Their ratio is the *theoretical* speedup that the measured one is
compared against.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.ao.quantization.observer import ObserverBase
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["macs_report"]


@contextmanager
def _parameters_frozen(model: nn.Module) -> Iterator[None]:
    """No parameter requires grad for the block, then each is restored.

    FlopCounterMode's module tracker hooks the autograd graph of every module input that requires grad, which
    fails under inference mode when a parameter itself is a module's input (a layer scale fed to an int8
    observer in a ConvNeXt prepared for quantization).
    """
    frozen = [parameter for parameter in model.parameters() if parameter.requires_grad]
    for parameter in frozen:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in frozen:
            parameter.requires_grad_(True)


@torch.inference_mode()
def macs_report(model: nn.Module, example_input: torch.Tensor) -> dict[str, int]:
    """MACs of one forward pass of `example_input`: `macs_dense` and `macs_effective`.

    A model prepared for int8 is counted as its float graph, which does the MACs the int8 kernels will, on a copy:
    its observers record every input they see, and the example input must not widen the calibrated ranges.
    """
    if any(isinstance(module, ObserverBase) for module in model.modules()):
        model = copy.deepcopy(model)
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, _parameters_frozen(model):
        model(example_input)
    per_module = counter.get_flop_counts()
    total_flops = counter.get_total_flops()
    prefix = type(model).__name__
    saved_flops = 0.0
    for name, module in model.named_modules():
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            continue
        key = f"{prefix}.{name}" if name else prefix  # the root module is counted under its class name alone
        flops = sum(per_module.get(key, {}).values())
        density = float(torch.count_nonzero(module.weight)) / module.weight.numel()
        saved_flops += flops * (1.0 - density)
    return {"macs_dense": int(total_flops // 2), "macs_effective": int((total_flops - saved_flops) // 2)}
