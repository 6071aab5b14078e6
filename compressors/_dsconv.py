"""The transform of `arch.dsconv`: each qualifying conv swapped for the depthwise-separable pair closest to it."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from compressors._direct_reads import Replacement, kept_for_readers
from compressors._lowrank import gram_svd
from compressors._modes import eval_mode
from compressors._modules import conv_pair, count_params, replace_module
from compressors.base import Compressed

__all__ = ["SeparablePair", "check", "separable_pair", "standard_convs", "swap"]


class SeparablePair(Replacement):
    """The depthwise KxK and pointwise 1x1 convs that run a standard conv."""

    action = "swap the convs of"
    replacement = "a depthwise-separable pair"


def standard_convs(model: nn.Module, skip_first: bool = False) -> list[tuple[str, nn.Conv2d]]:
    """Returns `(module name, conv)` for every conv `arch.dsconv` replaces, in module order.

    A conv qualifies when groups == 1, in_channels > 1 and its kernel is larger than 1x1: grouped and depthwise
    convs are already (partly) separable, a 1x1 conv is already pointwise, and with one input channel the
    depthwise step would be a no-op scaling.

    Args:
        model: The model to scan.
        skip_first: Leave out the model's first Conv2d (in `model.modules()` order, the stem in torchvision
            models) whether or not it qualifies, so it is never a later conv that gets skipped.
    """
    convs = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]
    if skip_first:
        convs = convs[1:]
    return [
        (name, conv)
        for name, conv in convs
        if conv.groups == 1 and conv.in_channels > 1 and conv.kernel_size[0] * conv.kernel_size[1] > 1
    ]


def separable_pair(conv: nn.Conv2d) -> tuple[SeparablePair, float]:
    """Builds the depthwise + pointwise pair closest to `conv`, one rank-1 SVD per input channel.

    The singular value is split as its square root over both factors so neither kernel ends up with a scale far
    from the original weights', which keeps fine-tuning with the original learning rate well conditioned.

    Args:
        conv: A conv accepted by `standard_convs`.

    Returns:
        `SeparablePair(depthwise, pointwise)` with the conv's stride, padding, dilation and padding mode on the
        depthwise step and its bias on the pointwise step, and the relative Frobenius error of the
        approximation (0 when every slice W[:, c] is already rank 1).
    """
    weight = conv.weight.detach()
    out_channels, in_channels, kh, kw = weight.shape
    slices = weight.double().transpose(0, 1).reshape(in_channels, out_channels, kh * kw)
    u, s, vh = gram_svd(slices)
    root = s[:, :1].sqrt()
    pointwise_weight = (u[:, :, 0] * root).T
    depthwise_weight = vh[:, 0, :] * root
    error = (s[:, 1:].square().sum() / s.square().sum().clamp_min(torch.finfo(s.dtype).tiny)).sqrt()
    device, dtype = weight.device, weight.dtype
    depthwise = nn.Conv2d(
        in_channels,
        in_channels,
        (kh, kw),
        stride=conv_pair(conv.stride),
        padding=conv.padding if isinstance(conv.padding, str) else conv_pair(conv.padding),
        dilation=conv_pair(conv.dilation),
        groups=in_channels,
        bias=False,
        padding_mode=conv.padding_mode,
        device=device,
        dtype=dtype,
    )
    pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=conv.bias is not None, device=device, dtype=dtype)
    with torch.no_grad():
        depthwise.weight.copy_(depthwise_weight.reshape(in_channels, 1, kh, kw))
        pointwise.weight.copy_(pointwise_weight.reshape(out_channels, in_channels, 1, 1))
        if conv.bias is not None:
            assert pointwise.bias is not None  # made with a bias just above
            pointwise.bias.copy_(conv.bias)
    return SeparablePair(depthwise, pointwise), float(error)


def check(name: str, model: nn.Module, skip_first: bool) -> None:
    """`DepthwiseSeparable.check` (compressor `name`)."""
    if not standard_convs(model, skip_first):
        raise ValueError(
            f"no standard KxK convolution (groups=1, in_channels>1, kernel>1) to replace; {name} needs at least one"
        )


def swap(name: str, model: nn.Module, example_input: torch.Tensor, skip_first: bool) -> Compressed:
    """`DepthwiseSeparable.apply` (compressor `name`): a copy of `model` with every qualifying conv swapped for its
    pair, but those whose `.weight` the model's own code reads, which a pair cannot stand in for (`convs_kept`)."""
    check(name, model, skip_first)
    swapped = copy.deepcopy(model)
    convs = standard_convs(swapped, skip_first)
    kept = kept_for_readers(swapped, convs, SeparablePair.replacement)
    convs = [(layer, conv) for layer, conv in convs if layer not in kept]
    positions = _output_positions(swapped, example_input, convs)
    layers: dict[str, dict[str, Any]] = {}
    for layer, conv in convs:
        pair, error = separable_pair(conv)
        layers[layer] = _layer_info(conv, pair, positions[layer], error)
        swapped = replace_module(swapped, layer, pair)
    info = {
        "convs_replaced": len(layers),
        "convs_kept": kept,
        **{key: sum(layer[key] for layer in layers.values()) for key in _TOTALS},
        "params_model_before": count_params(model),
        "params_model_after": count_params(swapped),
        "layers": layers,
    }
    return Compressed(model=swapped, masks={}, info=info)


_TOTALS = ("params_before", "params_after", "macs_before", "macs_after")


def _output_positions(
    model: nn.Module, example_input: torch.Tensor, convs: list[tuple[str, nn.Conv2d]]
) -> dict[str, int]:
    """Runs `model` once; returns, per conv, the output positions (batch x height x width) it computed.

    Positions add up over calls, so a conv applied twice counts its MACs twice.
    """
    positions = dict.fromkeys((name for name, _ in convs), 0)

    def record(name: str, output: torch.Tensor) -> None:
        positions[name] += output.numel() // output.shape[-3]

    handles = [
        conv.register_forward_hook(lambda _module, _inputs, output, name=name: record(name, output))
        for name, conv in convs
    ]
    try:
        with eval_mode(model), torch.no_grad():
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()
    return positions


def _layer_info(conv: nn.Conv2d, pair: nn.Sequential, positions: int, error: float) -> dict[str, Any]:
    kernel = conv.kernel_size[0] * conv.kernel_size[1]
    params_before = count_params(conv)
    params_after = count_params(pair)
    return {
        "params_before": params_before,
        "params_after": params_after,
        "macs_before": conv.out_channels * conv.in_channels * kernel * positions,
        "macs_after": (conv.in_channels * kernel + conv.in_channels * conv.out_channels) * positions,
        "params_ratio": params_after / params_before,
        "theoretical_ratio": 1 / conv.out_channels + 1 / kernel,
        "approximation_error": error,
    }
