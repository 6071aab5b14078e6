"""The transform of `prune.iterative`: rounds of magnitude pruning, each rewound and trained under its mask."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from compressors._modules import reinitialize
from compressors._unstructured import keep_masks, prunable_layers, sparsity_facts
from compressors.base import Compressed, Training

__all__ = ["prune_once", "prune_trained"]


def _draw_seed(seed: int, round_index: int) -> int:
    """The seed of the values `reinit` draws: one per cell seed and round, with no two pairs sharing one."""
    digest = hashlib.sha256(f"prune.iterative reinit {seed} {round_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def prune_once(name: str, model: nn.Module, sparsities: Sequence[float], scope: str) -> Compressed:
    """`IterativePruning.apply` (compressor `name`): the mask of every round, at `sparsities`, with no training
    between them."""
    pruned, layers = _copy_with_layers(name, model)
    keeps = [torch.ones_like(module.weight, dtype=torch.bool) for _, module in layers]
    for sparsity in sparsities:
        keeps = _prune_round(layers, keeps, sparsity, scope)
    _zero_pruned(layers, keeps)
    return Compressed(model=pruned, masks=_masks_by_name(layers, keeps), info=sparsity_facts(layers))


def prune_trained(
    name: str, model: nn.Module, training: Training, start: Mapping[str, torch.Tensor] | None, *,
    sparsities: Sequence[float], steps: Sequence[int], scope: str, reinit: bool,
) -> Compressed:  # fmt: skip
    """`IterativePruning.apply_trained` (compressor `name`): round k prunes to `sparsities[k]`, resets the weights to
    `start` (or, with `reinit`, re-draws them in the last round) and trains `steps[k]` mini-batches."""
    pruned, layers = _copy_with_layers(name, model)
    rounds = len(sparsities)
    keeps = [torch.ones_like(module.weight, dtype=torch.bool) for _, module in layers]
    per_round: list[dict[str, Any]] = []
    for round_index, (sparsity, round_steps) in enumerate(zip(sparsities, steps, strict=True), start=1):
        keeps = _prune_round(layers, keeps, sparsity, scope)
        if reinit and round_index == rounds:
            reinitialize(pruned, _draw_seed(training.seed, round_index))
        elif start is not None:
            pruned.load_state_dict(dict(start))
        _zero_pruned(layers, keeps)
        training.fit(pruned, round_steps, masks=_masks_by_name(layers, keeps))
        kept = sum(int(keep.sum()) for keep in keeps)
        total = sum(keep.numel() for keep in keeps)
        per_round.append(
            {
                "round": round_index,
                "sparsity": 1.0 - kept / total,
                "steps": round_steps,
                "top1": training.evaluate(pruned),
            }
        )
    info: dict[str, Any] = {**sparsity_facts(layers), "per_round": per_round, "steps_trained": training.steps}
    if reinit:
        info["reinit_seed"] = _draw_seed(training.seed, rounds)
    return Compressed(model=pruned, masks=_masks_by_name(layers, keeps), info=info)


def _copy_with_layers(name: str, model: nn.Module) -> tuple[nn.Module, list[tuple[str, nn.Conv2d | nn.Linear]]]:
    pruned = copy.deepcopy(model)
    layers = prunable_layers(pruned)
    if not layers:
        raise ValueError(f"{name} found no nn.Conv2d or nn.Linear layer to prune")
    return pruned, layers


def _prune_round(
    layers: Sequence[tuple[str, nn.Conv2d | nn.Linear]], keeps: Sequence[torch.Tensor], sparsity: float, scope: str
) -> list[torch.Tensor]:
    """The mask after a round: the smallest surviving weights go until the round's `sparsity`.

    Pruned entries score -1, below every magnitude, so they stay pruned however training left them and the
    count of zeros is the round's exact target rather than a drift of per-round roundings.
    """
    scores = [
        torch.where(keep, module.weight.detach().abs(), -1.0) for (_, module), keep in zip(layers, keeps, strict=True)
    ]
    return keep_masks(scores, sparsity, scope)


def _zero_pruned(layers: Sequence[tuple[str, nn.Conv2d | nn.Linear]], keeps: Sequence[torch.Tensor]) -> None:
    with torch.no_grad():
        for (_, module), keep in zip(layers, keeps, strict=True):
            # masked_fill, not mul: a negative weight times 0 is -0.0, which CSR would not encode bit for bit.
            module.weight.masked_fill_(~keep, 0.0)


def _masks_by_name(
    layers: Sequence[tuple[str, nn.Conv2d | nn.Linear]], keeps: Sequence[torch.Tensor]
) -> dict[str, torch.Tensor]:
    return {f"{name}.weight" if name else "weight": keep for (name, _), keep in zip(layers, keeps, strict=True)}
