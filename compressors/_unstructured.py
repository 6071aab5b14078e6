"""The transform of `prune.unstructured` (and the masks `prune.iterative` reuses): magnitude masks, pruning, and
the CSR form that runs the pruned weights on sparse kernels."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from compressors._direct_reads import direct_readers
from compressors._modules import replace_module
from compressors.base import Compressed, CompressorLimit, Executable
from compressors.presentation import CSR
from compressors.sparse_modules import CSR_ACTION, CsrConv2d, CsrLinear, direct_read_reason

__all__ = ["execute", "keep_masks", "prunable_layers", "prune", "sparsity_facts"]

_CSR_LABEL = "sparse CSR (torch.sparse.mm; conv as unfold + CSR matmul)"


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d | nn.Linear]]:
    """Returns `(module name, module)` for every `nn.Conv2d` and `nn.Linear`, whose `weight` is pruned."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Conv2d | nn.Linear)]


def _keep_mask(scores: torch.Tensor, n_pruned: int) -> torch.Tensor:
    """Returns a flat bool mask keeping all but the `n_pruned` smallest `scores`.

    Exactly `n_pruned` entries are dropped even when scores tie at the threshold: among ties, the earliest
    positions go first, so the mask is deterministic. kthvalue is O(n), unlike a full sort of a VGG's 138M
    weights.
    """
    keep = torch.ones_like(scores, dtype=torch.bool)
    if n_pruned == 0:
        return keep
    threshold = scores.kthvalue(n_pruned).values
    below = scores < threshold
    ties = (scores == threshold).nonzero().flatten()
    keep[below] = False
    keep[ties[: n_pruned - int(below.sum())]] = False
    return keep


def keep_masks(scores: Sequence[torch.Tensor], sparsity: float, scope: str) -> list[torch.Tensor]:
    """Bool masks, one shaped like each of `scores`, that drop the round(sparsity * n) smallest scores.

    Args:
        scores: One tensor per pruned weight (magnitudes, or anything ranked the same way).
        sparsity: Share of entries dropped, in [0, 1).
        scope: "global" counts n over all tensors against one threshold; "layer" drops that share of each.
    """
    flat = [score.flatten() for score in scores]
    if scope == "layer":
        flat_keeps = [_keep_mask(score, round(sparsity * score.numel())) for score in flat]
    else:
        all_scores = torch.cat(flat)
        flat_keeps = list(_keep_mask(all_scores, round(sparsity * all_scores.numel())).split([f.numel() for f in flat]))
    return [keep.reshape(score.shape) for keep, score in zip(flat_keeps, scores, strict=True)]


def sparsity_facts(layers: Sequence[tuple[str, nn.Conv2d | nn.Linear]]) -> dict[str, Any]:
    """`sparsity_achieved` (zeros over all of `layers`' weights) and `layer_sparsity` per module name, as the
    record's compressor info shows a pruned model."""
    layer_sparsity: dict[str, float] = {}
    zeros = total = 0
    for name, module in layers:
        layer_zeros = int((module.weight == 0).sum())
        layer_sparsity[name] = layer_zeros / module.weight.numel()
        zeros += layer_zeros
        total += module.weight.numel()
    return {"sparsity_achieved": zeros / total, "layer_sparsity": layer_sparsity}


def prune(name: str, model: nn.Module, sparsity: float, scope: str) -> Compressed:
    """`UnstructuredPruning.apply` (compressor `name`): a deep copy of `model` with its smallest-magnitude weights
    zeroed."""
    pruned = copy.deepcopy(model)
    layers = prunable_layers(pruned)
    if not layers:
        raise ValueError(f"{name} found no nn.Conv2d or nn.Linear layer to prune")
    keeps = keep_masks([module.weight.detach().abs() for _, module in layers], sparsity, scope)
    masks: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for (layer, module), keep in zip(layers, keeps, strict=True):
            # masked_fill, not mul: multiplying a negative weight by 0 stores -0.0, which CSR drops as a zero
            # and decodes as +0.0, so an encode/decode round trip would not be bit for bit.
            module.weight.masked_fill_(~keep, 0.0)
            masks[f"{layer}.weight" if layer else "weight"] = keep
    return Compressed(model=pruned, masks=masks, info=sparsity_facts(layers))


def execute(execution: str, model: nn.Module) -> Executable:
    """`UnstructuredPruning.finalize` with this `execution` ("dense" or "csr")."""
    if execution != CSR:
        return Executable(model, executed_as="dense kernels (zeros stored)", notes="")
    sparse = copy.deepcopy(model)
    kept_dense: dict[str, int] = {}
    swapped: list[tuple[str, nn.Conv2d | nn.Linear]] = []
    for name, module in prunable_layers(sparse):
        reason = "" if isinstance(module, nn.Linear) else _dense_only_reason(module)
        if reason:
            kept_dense[reason] = kept_dense.get(reason, 0) + 1
        else:
            swapped.append((name, module))
    _refuse_direct_reads(sparse, swapped)
    for name, module in swapped:
        sparse = replace_module(sparse, name, _csr_twin(module))
    notes = "; ".join(f"{count} {reason} kept dense (no CSR path)" for reason, count in kept_dense.items())
    return Executable(sparse, executed_as=_CSR_LABEL, notes=notes)


def _refuse_direct_reads(model: nn.Module, swapped: list[tuple[str, nn.Conv2d | nn.Linear]]) -> None:
    """Raises CompressorLimit if code of `model` reads the `.weight` of a layer in `swapped` rather than calling it.

    Such a layer cannot become a CSR module (its dense weight is what the reader wants), and keeping it dense would
    make a "CSR" time that is partly dense kernels. Where fx cannot trace the model, the CSR modules raise the same
    limit (`DirectWeightRead`) at the first read instead.
    """
    readers = direct_readers(model, [name for name, _ in swapped])
    if readers:
        kinds = {name: "Linear" if isinstance(module, nn.Linear) else "Conv2d" for name, module in swapped}
        reason = direct_read_reason(readers.values(), [kinds[name] for name in readers])
        raise CompressorLimit(CSR_ACTION, reason)


def _dense_only_reason(conv: nn.Conv2d) -> str:
    """Returns why `conv` has no CSR form ("" if it has one), phrased to follow a count in `notes`."""
    if conv.groups != 1:
        return "grouped/depthwise convs"
    if conv.padding_mode != "zeros":
        return f"convs with padding_mode {conv.padding_mode!r}"
    if isinstance(conv.padding, str):
        return f"convs with padding {conv.padding!r}"
    return ""


def _csr_twin(layer: nn.Conv2d | nn.Linear) -> CsrConv2d | CsrLinear:
    return CsrLinear.from_dense(layer) if isinstance(layer, nn.Linear) else CsrConv2d.from_dense(layer)
