"""Top-1 accuracy on a held-out split."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch
from torch import nn

__all__ = ["EvalSplit", "top1"]


class EvalSplit(Protocol):
    """Labelled images that can be read batch by batch: a bundled data set or a user's image folder."""

    def __len__(self) -> int: ...

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


@torch.inference_mode()
def top1(model: nn.Module, split: EvalSplit, batch_size: int = 500) -> float:
    """Fraction of `split` whose arg-max prediction equals the label."""
    model.eval()
    correct = total = 0
    for images, labels in split.batches(batch_size):
        correct += int((model(images).argmax(dim=1) == labels).sum())
        total += len(labels)
    return correct / total
