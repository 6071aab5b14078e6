"""Training the compressed architecture from scratch, the control of Liu et al. 2019 ("Rethinking the Value of
Network Pruning"): if a pruned architecture trained from random weights does as well as the fine-tuned pruned
model, what pruning found is the architecture, not the weights.

* `scratch-e` trains the same number of mini-batches (epochs) as the reference's own training;
* `scratch-b` trains the same compute: the reference's steps times dense MACs / compressed MACs, since a smaller
  model does fewer MACs per step. Liu et al. cap this at 2x on ImageNet, as a cost limit; the suite does not cap,
  because the point of Scratch-B is an equal budget, and the models the suite trains from scratch (those with a
  recipe) train in seconds to minutes even at 10x. The MACs are the effective ones (`bench.measure.flops`):
  channel pruning and layer swaps do them all, and a masked model is budgeted as a perfect sparse kernel would
  run it, as Liu et al. budget by FLOPs. On a CPU a small model's step costs more than its MACs say (overheads
  do not shrink with the layers), so Scratch-B's wall time is more than the reference's.

Both use the reference's recipe (learning rate and batch size), since that is what training from scratch means;
fine-tuning's smaller learning rate is for weights that are already trained.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

import compressors
from bench.data import Split
from bench.measure.flops import macs_report
from bench.models import TrainRecipe
from bench.recovery_loop import train_steps

__all__ = ["SCRATCH_METHODS", "scratch_steps", "train_from_scratch"]

SCRATCH_METHODS = ("scratch-e", "scratch-b")


def scratch_steps(method: str, reference_steps: int, reference_macs: int, compressed_macs: int) -> int:
    """Mini-batches `method` trains: `reference_steps` (scratch-e), or that times the MAC ratio, rounded (scratch-b).

    Raises:
        ValueError: An unknown method, or MACs that are not positive.
    """
    if method not in SCRATCH_METHODS:
        raise ValueError(f"scratch method must be one of {', '.join(SCRATCH_METHODS)}; got {method!r}")
    if method == "scratch-e":
        return reference_steps
    if reference_macs <= 0 or compressed_macs <= 0:
        raise ValueError(f"scratch-b needs positive MACs, got reference {reference_macs}, compressed {compressed_macs}")
    return max(1, round(reference_steps * reference_macs / compressed_macs))


def train_from_scratch(
    method: str,
    model: nn.Module,
    masks: Mapping[str, torch.Tensor],
    reference: nn.Module,
    split: Split,
    example_input: torch.Tensor,
    reference_steps: int,
    recipe: TrainRecipe,
    seed: int,
) -> dict[str, Any]:
    """Redraw `model`'s weights (seeded; its masks kept, so a pruned pattern stays the architecture) and train it in
    place for `method`'s budget with the reference's recipe.

    Returns:
        The facts of what was really trained: `steps`, `from` ("random init"), `lr`, `batch_size`, and for
        scratch-b the `macs_ratio` the steps were scaled by.
    """
    reference_macs = macs_report(reference, example_input)["macs_effective"]
    compressed_macs = macs_report(model, example_input)["macs_effective"]
    steps = scratch_steps(method, reference_steps, reference_macs, compressed_macs)
    compressors.reinitialize(model, seed)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].masked_fill_(~mask, 0.0)
    trained = train_steps(model, split, steps, masks, lr=recipe.lr, batch_size=recipe.batch_size, seed=seed)
    facts: dict[str, Any] = {"steps": trained, "from": "random init", "lr": recipe.lr, "batch_size": recipe.batch_size}
    if method == "scratch-b":
        facts["macs_ratio"] = reference_macs / compressed_macs
    return facts
