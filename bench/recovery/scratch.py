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
fine-tuning's smaller learning rate is for weights that are already trained. The cell's `finetune_steps` does not
apply: the record's `compressor_info["recovery"]["steps"]` says what was trained.
"""

from __future__ import annotations

from typing import Any

import torch

import compressors
from bench.measure.flops import macs_report
from bench.recovery.job import RecoveryJob

__all__ = ["SCRATCH_METHODS", "scratch_b", "scratch_e", "scratch_steps"]

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


def _from_scratch(method: str, job: RecoveryJob) -> dict[str, Any]:
    """Redraw the job's model (seeded; its masks kept, so a pruned pattern stays part of the architecture) and train
    it in place for `method`'s budget with the reference's recipe.

    Returns:
        The facts of what was really trained: `steps`, `from` ("random init"), `lr`, `batch_size`, and for
        scratch-b the `macs_ratio` the steps were scaled by.

    Raises:
        CompressorLimit: The suite did not train the reference (user weights, no recipe), so there is no training to
            repeat from scratch.
    """
    if job.reference_steps is None or job.recipe is None:
        raise compressors.CompressorLimit(
            "train from scratch", "only a model the suite trains (a recipe, no --weights) has a training to repeat"
        )
    reference_macs = macs_report(job.teacher, job.example_input)["macs_effective"]
    compressed_macs = macs_report(job.model, job.example_input)["macs_effective"]
    steps = scratch_steps(method, job.reference_steps, reference_macs, compressed_macs)
    compressors.reinitialize(job.model, job.seed)
    params = dict(job.model.named_parameters())
    with torch.no_grad():
        for name, mask in job.masks.items():
            params[name].masked_fill_(~mask, 0.0)
    job.fit(steps=steps, lr=job.recipe.lr, batch_size=job.recipe.batch_size)
    facts: dict[str, Any] = {"steps": steps, "from": "random init", "lr": job.recipe.lr,
                             "batch_size": job.recipe.batch_size}  # fmt: skip
    if method == "scratch-b":
        facts["macs_ratio"] = reference_macs / compressed_macs
    return facts


def scratch_e(job: RecoveryJob) -> dict[str, Any]:
    """The `scratch-e` recovery method: from random weights, as many mini-batches as the reference's training."""
    return _from_scratch("scratch-e", job)


def scratch_b(job: RecoveryJob) -> dict[str, Any]:
    """The `scratch-b` recovery method: from random weights, the reference's training compute in MACs."""
    return _from_scratch("scratch-b", job)
