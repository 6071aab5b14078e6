"""The `Training` lent to compressors that train as they compress (iterative pruning, slimmable widths, early
exits): the suite's training loop over the reference's split and its held-out top-1, so a compressor trains the
way recovery does without importing the suite."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from bench.measure.accuracy import top1
from bench.models.references import Reference
from bench.models.training import fit
from compressors import Training, TrainLoss

__all__ = ["lend_training"]


def lend_training(reference: Reference, steps: int, cell_seed: int) -> Training:
    """The `Training` a compressor that trains gets for one cell: the suite's loop over the reference's training
    split, its held-out top-1, and the reference's initial and rewound weights where the suite trained it.

    Raises:
        ValueError: The reference has no training split.
    """
    if reference.train is None:
        raise ValueError("the model has no training split")
    split = reference.train
    test = reference.test

    def train_for(
        model: nn.Module,
        steps: int,
        *,
        masks: Mapping[str, torch.Tensor] | None = None,
        loss: TrainLoss | None = None,
        seed: int | None = None,
    ) -> None:
        fit(model, split, steps, masks=masks, loss=loss, seed=cell_seed if seed is None else seed)

    def evaluate(model: nn.Module) -> float:
        assert test is not None  # a model the suite trains has its held-out split
        return top1(model, test)

    return Training(
        steps=steps,
        seed=cell_seed,
        fit=train_for,
        evaluate=evaluate,
        initial_state=reference.initial_state,
        rewound_state=reference.rewound_state,
        reference_steps=reference.reference_steps,
    )
