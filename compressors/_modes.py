"""Running a model for inspection without changing it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

__all__ = ["eval_mode"]


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Puts `model` in eval mode for the block, then restores each submodule's own training flag.

    Tracing and MAC-counting forward passes must not update BatchNorm running statistics of the model that
    is handed back, nor fail on batch-size-1 BatchNorm in training mode.
    """
    flags = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for module, training in flags.items():
            module.training = training
