"""The transform of `prune.channel`: a search for the uniform channel ratio that meets the MAC budget, each trial
pruned by torch-pruning's DependencyGraph."""

from __future__ import annotations

import copy
import traceback
from collections.abc import Sequence

import torch
import torch_pruning as tp
from torch import nn

from compressors._criteria import (
    check_criterion,
    forget_activation_density,
    importance,
    record_activation_density,
)
from compressors._modes import eval_mode
from compressors._modules import count_params
from compressors._ratio_search import search_ratio
from compressors.base import Compressed, CompressorLimit

__all__ = ["attention_blocks", "prune"]


def prune(
    name: str, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor], *,
    macs_removed: float, criterion: str,
) -> Compressed:  # fmt: skip
    """`ChannelPruning.apply` (compressor `name`): a pruned copy of `model` whose MACs match the budget.

    Raises:
        CompressorLimit: The model has attention blocks (refused before anything is traced), or a reshape
            torch-pruning cannot follow.
    """
    _refuse_attention(model)
    check_criterion(criterion, model)
    reference = copy.deepcopy(model)
    if criterion == "apoz":
        record_activation_density(reference, list(calibration) or [example_input])
    output_shape, ignored = _output_layers(reference, example_input)
    macs_dense = _count_macs(reference, example_input)
    best = search_ratio(
        lambda ratio: _prune_copy(reference, example_input, ratio, ignored, criterion),
        lambda candidate: _count_macs(candidate, example_input),
        macs_dense=macs_dense,
        target=1.0 - macs_removed,
        max_ratio=_max_ratio(reference, ignored),
    )
    pruned = best.model
    forget_activation_density(pruned)
    with eval_mode(pruned), torch.no_grad():
        pruned_shape = tuple(pruned(example_input).shape)
    if pruned_shape != output_shape:
        raise RuntimeError(f"{name} changed the output shape from {output_shape} to {pruned_shape}")
    info = {
        "criterion": criterion,
        "pruning_ratio": best.ratio,
        "macs_dense": macs_dense,
        "macs_pruned": best.macs,
        "macs_removed_achieved": 1.0 - best.macs / macs_dense,
        "params_dense": count_params(reference),
        "params_pruned": count_params(pruned),
    }
    if criterion == "apoz":
        info["calibration"] = (
            f"{len(calibration)} batches of real inputs" if calibration else "the example input (no data)"
        )
    return Compressed(model=pruned, masks={}, info=info)


def _prune_copy(
    model: nn.Module, example_input: torch.Tensor, ratio: float, ignored: list[str], criterion: str
) -> nn.Module:
    pruned = copy.deepcopy(model)
    if ratio == 0.0:
        return pruned
    with eval_mode(pruned):
        try:
            pruner = tp.pruner.BasePruner(
                pruned,
                example_input,
                importance=importance(criterion),
                pruning_ratio=ratio,
                ignored_layers=[pruned.get_submodule(name) for name in ignored],
                # These default to shared mutable dicts that the pruner fills in; fresh ones keep trials
                # independent and let earlier copies be freed.
                in_channel_groups={},
                out_channel_groups={},
                num_heads={},
            )
        except ZeroDivisionError as error:
            if not _raised_in(error, _RESHAPE_MAPPING):
                raise
            raise CompressorLimit("prune", _RESHAPE_LIMIT) from error
        pruner.step()
    return pruned


# torch-pruning maps channel indices through a reshape by the ratio of the channel counts on its two sides; a
# channel shuffle (view as groups x channels, transpose, view back: ShuffleNet) has fewer "channels" (the
# groups) on one side than the other and divides by zero there, so such a model cannot be pruned by it.
_RESHAPE_MAPPING = "update_reshape_index_mapping"
_RESHAPE_LIMIT = (
    "torch-pruning cannot trace the channel shuffle (a reshape that regroups channels: its dependency graph"
    f" divides by zero in {_RESHAPE_MAPPING})"
)


# Attributes that hold a multi-head block's head count: torch's MultiheadAttention and torchvision's
# ShiftedWindowAttention (num_heads), torchvision's MaxViT (n_heads), Hugging Face (num_attention_heads), the
# vit-pytorch models (heads).
_HEAD_COUNTS = ("num_heads", "n_heads", "num_attention_heads", "heads")
_ATTENTION_LIMIT = (
    "torch-pruning cannot prune attention blocks ({blocks}): their projections are reshaped by head counts and"
    " widths kept as plain numbers, which its dependency graph does not update (on Swin, building the graph grows"
    " memory without bound); prune.unstructured applies to their Linear layers"
)


def attention_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """`(name, module)` of the innermost multi-head attention blocks in `model`.

    A block is an `nn.MultiheadAttention`, or a module that keeps an integer head count (`_HEAD_COUNTS`), the
    number its head split (`reshape(..., num_heads, head_dim)`) is made with; a block holding another (torchvision
    ViT's EncoderBlock around its MultiheadAttention) is left to the inner one.
    """
    blocks = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.MultiheadAttention) or any(_is_count(getattr(module, a, None)) for a in _HEAD_COUNTS)
    ]
    names = [name for name, _ in blocks]
    return [(name, module) for name, module in blocks if not any(_holds(name, other) for other in names)]


def _holds(name: str, other: str) -> bool:
    """Whether module `other` lies below module `name` (the model itself, "", holds every other module)."""
    return other != name and (not name or other.startswith(f"{name}."))


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _refuse_attention(model: nn.Module) -> None:
    """Raises CompressorLimit if `model` has attention blocks, before any copy, forward or trace.

    What torch-pruning 1.6 does there, found on torchvision's models: on ViT the pruned width breaks the reshape
    into patches (`self.hidden_dim` is an int); on Swin building the DependencyGraph alone grows without bound (a
    process reached 23.5 GB and was killed; a tiny Swin ends in MemoryError in its index mapping). Its `num_heads`
    option keeps torch's MultiheadAttention whole, not the model around it, and `ignored_layers` only acts once the
    graph is built.
    """
    blocks = attention_blocks(model)
    if blocks:
        counts: dict[str, int] = {}
        for _, module in blocks:
            counts[type(module).__name__] = counts.get(type(module).__name__, 0) + 1
        described = ", ".join(f"{count} {kind}" for kind, count in counts.items())
        raise CompressorLimit("prune", _ATTENTION_LIMIT.format(blocks=described))


def _raised_in(error: BaseException, function: str) -> bool:
    """Whether `error` was raised in torch-pruning's `function`, rather than anywhere else."""
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and frames[-1].name == function and "torch_pruning" in frames[-1].filename


def _output_layers(model: nn.Module, example_input: torch.Tensor) -> tuple[tuple[int, ...], list[str]]:
    """Runs `model` once; returns its output shape and the names of layers whose outputs must all be kept.

    Those are every Linear as wide as the output and the last Conv2d/Linear to run (the classifier, even
    when pooling or flattening follows it).
    """
    layers = {name: module for name, module in model.named_modules() if isinstance(module, nn.Conv2d | nn.Linear)}
    executed: list[str] = []
    handles = [
        module.register_forward_hook(lambda _module, _inputs, _output, name=name: executed.append(name))
        for name, module in layers.items()
    ]
    try:
        with eval_mode(model), torch.no_grad():
            output = model(example_input)
    finally:
        for handle in handles:
            handle.remove()
    if not isinstance(output, torch.Tensor) or output.dim() < 2:
        got = f"shape {tuple(output.shape)}" if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(f"prune.channel needs a model returning a (batch, outputs, ...) tensor, got {got}")
    width = output.shape[1]
    ignored = {
        name for name, module in layers.items() if isinstance(module, nn.Linear) and module.out_features == width
    }
    ignored.update(executed[-1:])
    return tuple(output.shape), sorted(ignored)


def _max_ratio(model: nn.Module, ignored: list[str]) -> float:
    """Returns the largest uniform ratio that still leaves every prunable layer at least one channel.

    torch-pruning keeps int(channels * (1 - ratio)) channels, so the ratio must stay just below 1 - 1/min.
    """
    widths = [
        module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d | nn.Linear) and name not in ignored
    ]
    return max(0.0, 1.0 - 1.0 / min(widths) - 1e-6) if widths else 0.0


def _count_macs(model: nn.Module, example_input: torch.Tensor) -> int:
    macs, _ = tp.utils.count_ops_and_params(model, example_input)
    return int(macs)
