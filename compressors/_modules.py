"""Module surgery shared by the compressors that swap layers for other layers."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["conv_pair", "count_params", "reinitialize", "replace_module"]


def conv_pair(values: tuple[int, ...]) -> tuple[int, int]:
    """A Conv2d's kernel size, stride, dilation or numeric padding: torch types them `tuple[int, ...]`, a Conv2d
    holds two."""
    first, second = values
    return first, second


def count_params(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def replace_module(model: nn.Module, name: str, new: nn.Module) -> nn.Module:
    """Put `new` where the submodule `name` is and return the model; `name` "" (the model itself) returns `new`."""
    if not name:
        return new
    parent_name, _, child_name = name.rpartition(".")
    setattr(model.get_submodule(parent_name), child_name, new)
    return model


def reinitialize(model: nn.Module, seed: int) -> nn.Module:
    """Draw every parameter of `model` afresh, in place, with each layer's own initialization (`reset_parameters`),
    seeded: the architecture kept, what training taught it forgotten (training from scratch, a lottery control)."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for module in model.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    finally:
        torch.random.set_rng_state(generator_state)
    return model
