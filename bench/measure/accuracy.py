"""Top-1 accuracy on a held-out split."""

from __future__ import annotations

import torch
from torch import nn

from bench.data import Split

__all__ = ["top1"]


@torch.inference_mode()
def top1(model: nn.Module, split: Split, batch_size: int = 1000) -> float:
    """Fraction of `split` whose arg-max prediction equals the label."""
    model.eval()
    correct = 0
    for start in range(0, len(split), batch_size):
        logits = model(split.x[start : start + batch_size])
        correct += int((logits.argmax(dim=1) == split.y[start : start + batch_size]).sum())
    return correct / len(split)
