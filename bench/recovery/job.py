"""The one type every recovery method takes: a compressed model to recover, with everything a method may need."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.models.data import Split
from bench.models.registry import TrainRecipe
from bench.models.training import fit
from compressors import TrainLoss

__all__ = ["RecoveryJob"]


@dataclass(frozen=True)
class RecoveryJob:
    """One compressed model to recover, with everything a method may need.

    Attributes:
        model: The compressed model, trained in place.
        masks: Parameter name -> kept entries, reapplied after every step (pruned weights stay zero).
        teacher: The uncompressed reference, for methods that learn from it.
        train: The training split.
        steps: The cell's budget in mini-batches.
        seed: The cell's training seed.
        settings: The cell's recovery settings (`METHOD_PARAMS[method]` of them, and the method).
        reference_steps: Mini-batches of the reference's own training, or None when the suite did not train it.
        example_input: An input of the model's shape, for methods that count MACs or probe feature maps.
        recipe: The model's training recipe, for methods that train from scratch (which also need `reference_steps`:
            a recipe the suite did not train the reference by is no training to repeat); None without one.
    """

    model: nn.Module
    masks: Mapping[str, torch.Tensor]
    teacher: nn.Module
    train: Split
    steps: int
    seed: int
    settings: Mapping[str, Any]
    reference_steps: int | None
    example_input: torch.Tensor
    recipe: TrainRecipe | None = None

    def fit(self, loss: TrainLoss | None = None, **options: Any) -> None:
        """Train the job's model on its split for its budget, masks kept, with `loss` (cross-entropy if None)."""
        options.setdefault("steps", self.steps)
        options.setdefault("seed", self.seed)
        fit(self.model, self.train, masks=self.masks, loss=loss, **options)
