"""A slimmable network: one set of Conv2d/Linear weights run at several widths, a BatchNorm of its own per width.

At width w every Conv2d and Linear keeps its first round(w * outputs) filters (the input layer keeps the model's
input channels, the classifier its outputs) and reads the first channels the layer before it kept, so a narrow
network is a slice of the wide one (Yu et al., "Slimmable Neural Networks", 2019). A BatchNorm's statistics differ
from one width to the next, which is why each width has its own ("switchable batch normalization").
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

from compressors._modules import conv_pair
from compressors.base import CompressorLimit

__all__ = ["Slimmable", "SwitchableNorm", "kept_channels"]

# Layers that leave the channel count as it is: they run unchanged at every width.
_CHANNEL_WISE = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Sigmoid, nn.Tanh, nn.MaxPool2d, nn.AvgPool2d,
    nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Dropout, nn.Identity, nn.Flatten,
)  # fmt: skip
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_ACCEPTED = "Conv2d (groups=1), Linear, BatchNorm1d/2d, pooling, activations, Dropout and Flatten"


@dataclass(frozen=True)
class _Kept:
    """How many input and output channels (features) one layer keeps at one width."""

    inputs: int
    outputs: int


def _scaled(width: float, channels: int) -> int:
    """round(width * channels), halves up (Python's round sends 2.5 to 2), and never below one channel."""
    return max(1, math.floor(width * channels + 0.5))


def kept_channels(layers: nn.Sequential, width: float) -> list[_Kept | None]:
    """For each layer of `layers`, the channels it keeps at `width`; None for a layer with no channels of its own.

    Raises:
        CompressorLimit: A layer that is none of `_ACCEPTED`, a grouped conv, or a layer whose input does not match
            the channels of the layer before it.
    """
    weighted = [index for index, layer in enumerate(layers) if isinstance(layer, nn.Conv2d | nn.Linear)]
    if not weighted:
        raise CompressorLimit("slim", "dynamic.width needs at least one Conv2d or Linear layer to slim")
    classifier = weighted[-1]
    # The channels the previous layer produces, full and at `width`; None at the model's input, which is kept.
    full: int | None = None
    kept: int | None = None
    # Whether the previous layer's output is flat (batch, features), as a Linear needs it.
    flat = False
    plan: list[_Kept | None] = []
    for index, layer in enumerate(layers):
        where = f"layer {index} ({type(layer).__name__})"
        if isinstance(layer, nn.Conv2d):
            if layer.groups != 1:
                reason = f"dynamic.width does not slim grouped convs: {where} has groups={layer.groups}"
                raise CompressorLimit("slim", reason)
            _check_input(where, layer.in_channels, full)
            inputs = layer.in_channels if kept is None else kept
            outputs = layer.out_channels if index == classifier else _scaled(width, layer.out_channels)
            full, kept, flat = layer.out_channels, outputs, False
            plan.append(_Kept(inputs, outputs))
        elif isinstance(layer, nn.Linear):
            if full is not None and not flat:
                raise CompressorLimit("slim", f"dynamic.width needs a Flatten between feature maps and {where}")
            # After Flatten, each channel is a contiguous run of in_features / channels features (channel-major).
            per_channel = 1 if full is None else layer.in_features // full
            _check_input(where, layer.in_features, None if full is None else full * per_channel)
            inputs = layer.in_features if kept is None else kept * per_channel
            outputs = layer.out_features if index == classifier else _scaled(width, layer.out_features)
            full, kept, flat = layer.out_features, outputs, True
            plan.append(_Kept(inputs, outputs))
        elif isinstance(layer, _NORMS):
            _check_input(where, layer.num_features, full)
            channels = layer.num_features if kept is None else kept
            plan.append(_Kept(channels, channels))
        elif isinstance(layer, _CHANNEL_WISE):
            flat = flat or isinstance(layer, nn.Flatten)
            plan.append(None)
        else:
            raise CompressorLimit("slim", f"dynamic.width slims sequences of {_ACCEPTED}; {where} is not one")
    return plan


def _check_input(where: str, inputs: int, produced: int | None) -> None:
    if produced is not None and inputs != produced:
        raise CompressorLimit("slim", f"dynamic.width cannot follow the channels into {where}: it takes {inputs},"
                                      f" the layer before gives {produced}")  # fmt: skip


class SwitchableNorm(nn.Module):
    """One BatchNorm per width, each over that width's channels: `norms[i]` serves `widths[i]`."""

    def __init__(self, norm: nn.BatchNorm1d | nn.BatchNorm2d, channels: Sequence[int]) -> None:
        """Warm start: each width's norm begins as the reference norm's first channels (affine and statistics)."""
        super().__init__()
        self.norms = nn.ModuleList(_sliced_norm(norm, count) for count in channels)


def _sliced_norm(norm: nn.BatchNorm1d | nn.BatchNorm2d, channels: int) -> nn.BatchNorm1d | nn.BatchNorm2d:
    sliced = type(norm)(channels, norm.eps, norm.momentum, norm.affine, norm.track_running_stats)
    source, target = norm.state_dict(), sliced.state_dict()
    with torch.no_grad():
        for key, value in source.items():
            target[key] = value[:channels].clone() if value.dim() else value.clone()
    sliced.load_state_dict(target)
    return sliced.train(norm.training)


class Slimmable(nn.Module):
    """A sequential network that runs at any of its `widths`: the first channels of shared weights, and a
    switchable BatchNorm.

    Its state dict is the full-width model's Conv2d/Linear weights (one parameter set for every width) plus each
    width's BatchNorm. `forward` runs at `width`, the full width unless set otherwise; `narrow` builds the plain
    model of one width for export.
    """

    def __init__(self, reference: nn.Sequential, widths: Sequence[float]) -> None:
        """Slim a copy of `reference`, warm-started from its weights.

        Args:
            reference: The trained model; not mutated.
            widths: The widths it will run at, ascending, the last 1.0.

        Raises:
            CompressorLimit: A layer `kept_channels` cannot follow.
        """
        super().__init__()
        self.widths = tuple(widths)
        self.plans = [kept_channels(reference, width) for width in self.widths]
        layers = copy.deepcopy(reference)
        for index, layer in enumerate(layers):
            if isinstance(layer, _NORMS):
                counts = [_kept(plan, index).outputs for plan in self.plans]
                layers[index] = SwitchableNorm(layer, counts)
        self.layers = layers
        self.width = self.widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x, self.width)

    def run(self, x: torch.Tensor, width: float) -> torch.Tensor:
        """The network's output at `width`, one of `widths`."""
        position = self.widths.index(width)
        for layer, kept in zip(self.layers, self.plans[position], strict=True):
            if isinstance(layer, nn.Conv2d):
                assert kept is not None
                bias = layer.bias[: kept.outputs] if layer.bias is not None else None
                # The layer's own forward applies its padding mode (zeros, reflect, ...) exactly as it would.
                x = layer._conv_forward(x, layer.weight[: kept.outputs, : kept.inputs], bias)
            elif isinstance(layer, nn.Linear):
                assert kept is not None
                bias = layer.bias[: kept.outputs] if layer.bias is not None else None
                x = functional.linear(x, layer.weight[: kept.outputs, : kept.inputs], bias)
            elif isinstance(layer, SwitchableNorm):
                x = layer.norms[position](x)
            else:
                x = layer(x)
        return x

    def narrow(self, width: float) -> nn.Sequential:
        """The plain model of `width`: the layers a model built at that width has, holding copies of its slices."""
        position = self.widths.index(width)
        built: list[nn.Module] = []
        for layer, kept in zip(self.layers, self.plans[position], strict=True):
            if isinstance(layer, nn.Conv2d):
                assert kept is not None
                built.append(_sliced_conv(layer, kept))
            elif isinstance(layer, nn.Linear):
                assert kept is not None
                built.append(_sliced_linear(layer, kept))
            elif isinstance(layer, SwitchableNorm):
                built.append(copy.deepcopy(layer.norms[position]))
            else:
                built.append(copy.deepcopy(layer))
        return nn.Sequential(*built).train(self.training)


def _kept(plan: list[_Kept | None], index: int) -> _Kept:
    kept = plan[index]
    assert kept is not None, f"layer {index} has channels"
    return kept


def _sliced_conv(conv: nn.Conv2d, kept: _Kept) -> nn.Conv2d:
    sliced = nn.Conv2d(
        kept.inputs,
        kept.outputs,
        conv_pair(conv.kernel_size),
        stride=conv_pair(conv.stride),
        padding=conv.padding if isinstance(conv.padding, str) else conv_pair(conv.padding),
        dilation=conv_pair(conv.dilation),
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    with torch.no_grad():
        sliced.weight.copy_(conv.weight[: kept.outputs, : kept.inputs])
        if conv.bias is not None and sliced.bias is not None:
            sliced.bias.copy_(conv.bias[: kept.outputs])
    return sliced


def _sliced_linear(linear: nn.Linear, kept: _Kept) -> nn.Linear:
    sliced = nn.Linear(kept.inputs, kept.outputs, bias=linear.bias is not None)
    with torch.no_grad():
        sliced.weight.copy_(linear.weight[: kept.outputs, : kept.inputs])
        if linear.bias is not None:
            sliced.bias.copy_(linear.bias[: kept.outputs])
    return sliced
