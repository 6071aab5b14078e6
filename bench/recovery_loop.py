"""The mini-batch loop every recovery method trains with: Adam, a seeded data order, masks kept after each step."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from bench.data import Split
from compressors import TrainLoss

__all__ = ["train_steps"]


def _cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(model(x), y)


def train_steps(
    model: nn.Module,
    split: Split,
    steps: int,
    masks: Mapping[str, torch.Tensor],
    loss: TrainLoss | None = None,
    *,
    lr: float,
    batch_size: int,
    seed: int,
) -> int:
    """Train `model` in place for exactly `steps` mini-batches (epochs reshuffled as needed); returns the count.

    Args:
        masks: Parameter name -> bool tensor of kept entries, reapplied after every step so pruned weights stay zero.
        loss: The mini-batch loss; cross-entropy of `model(x)` when None.
        seed: Seeds the data order and anything the step draws (dropout), so a seed gives one result.
    """
    params = dict(model.named_parameters())
    unknown = sorted(set(masks) - set(params))
    if unknown:
        raise ValueError(f"masks name parameters the model does not have: {', '.join(unknown)}")
    objective = loss or _cross_entropy
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    done = 0
    while done < steps:
        order = torch.randperm(len(split), generator=generator)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            objective(model, split.x[index], split.y[index]).backward()
            optimizer.step()
            with torch.no_grad():
                for name, mask in masks.items():
                    params[name].masked_fill_(~mask, 0.0)
            done += 1
            if done == steps:
                break
    model.eval()
    return done
