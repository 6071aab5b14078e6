"""Compress a reference for one training group, and recover the accuracy compression lost when the cell asks.

The group's preparation (`bench.run.prepare`) calls this once per compressed model and keeps what it returns.
"""

from __future__ import annotations

import torch

import compressors
from bench.measure.accuracy import top1
from bench.models.references import Reference
from bench.recovery.job import RecoveryJob
from bench.recovery.lending import lend_training
from bench.recovery.methods import recover
from bench.run.matrix import Cell
from compressors import Compressed

__all__ = ["compress"]


def compress(
    cell: Cell,
    config: compressors.CompressorConfig,
    reference: Reference,
    example: torch.Tensor,
    calibration: list[torch.Tensor],
) -> tuple[Compressed, float | None]:
    """`reference` compressed with `config` (recovered, or trained as it was compressed, if the cell asks) and its
    top-1 before recovery (None when there is no data, or when it trained as it compressed).

    `example` is one input of batch 1: compression does not depend on the batch the model is timed at, and batch 1
    traces every graph alike.

    Raises:
        CompressorLimit: The compressor trains as it compresses, and the cell gives it no data or no budget.
    """
    settings = dict(cell.recovery)
    seed = int(settings.get("seed", 0))
    if config.trains:
        if reference.train is None or not cell.finetune_steps:
            raise compressors.CompressorLimit(
                "train", f"{config.name} trains as it compresses: it needs a model the suite trains (a bundled"
                " data set, no --data) and finetune_steps > 0",
            )  # fmt: skip
        training = lend_training(reference, cell.finetune_steps, seed)
        return config.apply_trained(reference.model, example, calibration, training), None
    compressed = config.apply(reference.model, example, calibration)
    before = None
    if reference.test is not None:
        before = top1(compressed.model, reference.test)
        if cell.finetune_steps and reference.train is not None:
            job = RecoveryJob(
                compressed.model, compressed.masks, reference.model, reference.train, cell.finetune_steps,
                seed, settings, reference.reference_steps, example, reference.recipe,
            )  # fmt: skip
            facts = recover(job)  # the method's own facts (the steps it really trained) beside its name
            if compressed.codes:
                # Training moves weights off their quantization grid; quantizing the recovered weights again
                # keeps the stored codes and the evaluated model one and the same.
                compressed = config.apply(compressed.model, example, calibration)
            if len(facts) > 1:
                compressed.info["recovery"] = facts
    return compressed, before
