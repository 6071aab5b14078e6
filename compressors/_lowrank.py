"""The transform of `lowrank.svd` (and the SVD `arch.dsconv` shares): truncated SVD of each chosen layer, run as two
thinner dense layers."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from compressors._direct_reads import Replacement, kept_for_readers
from compressors._modules import conv_pair, count_params, replace_module
from compressors.base import Compressed

__all__ = ["FactorizedPair", "check", "factorizable_layers", "factorize", "factorize_model", "gram_svd"]

_LAYER_KINDS = {
    "all": "nn.Linear or groups=1 nn.Conv2d",
    "linear": "nn.Linear",
    "conv": "groups=1 nn.Conv2d",
}


class FactorizedPair(Replacement):
    """The two thinner layers that run a factorized Linear or Conv2d."""

    action = "factorize"
    replacement = "a factorized pair"


def factorizable_layers(model: nn.Module, layers: str = "all") -> list[tuple[str, nn.Linear | nn.Conv2d]]:
    """Returns `(module name, module)` for every layer `lowrank.svd` factorizes, in module order.

    Args:
        model: The model to scan.
        layers: "all", "linear" or "conv". Grouped and depthwise convs never qualify: their weight is a stack
            of small per-group matrices, not one matrix to factorize.
    """
    kinds: tuple[type[nn.Linear | nn.Conv2d], ...] = {
        "all": (nn.Linear, nn.Conv2d),
        "linear": (nn.Linear,),
        "conv": (nn.Conv2d,),
    }[layers]
    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, kinds) and not (isinstance(module, nn.Conv2d) and module.groups != 1)
    ]


def factorize(
    layer: nn.Linear | nn.Conv2d, u: torch.Tensor, s: torch.Tensor, vh: torch.Tensor, rank: int
) -> FactorizedPair:
    """Builds the two-layer rank-`rank` form of `layer` from the SVD of its flattened weight.

    The singular values are split as square roots over both factors so the two weights have similar scales,
    which keeps fine-tuning with the original learning rate well conditioned.

    Args:
        layer: A layer accepted by `factorizable_layers`.
        u, s, vh: The thin SVD of `weight.reshape(O, -1)`, as `gram_svd` returns it.
        rank: How many singular values to keep, in [1, len(s)].

    Returns:
        `FactorizedPair(first, second)`: first maps to `rank` features without bias (a conv keeps the kernel,
        stride, padding, dilation and padding mode), second maps to the outputs (1x1 for a conv) and carries
        the bias.
    """
    root = s[:rank].sqrt()
    outer = u[:, :rank] * root
    inner = root[:, None] * vh[:rank]
    device, dtype = layer.weight.device, layer.weight.dtype
    bias = layer.bias
    first: nn.Linear | nn.Conv2d
    second: nn.Linear | nn.Conv2d
    if isinstance(layer, nn.Linear):
        first = nn.Linear(layer.in_features, rank, bias=False, device=device, dtype=dtype)
        second = nn.Linear(rank, layer.out_features, bias=bias is not None, device=device, dtype=dtype)
    else:
        first = nn.Conv2d(
            layer.in_channels,
            rank,
            conv_pair(layer.kernel_size),
            stride=conv_pair(layer.stride),
            padding=layer.padding if isinstance(layer.padding, str) else conv_pair(layer.padding),
            dilation=conv_pair(layer.dilation),
            bias=False,
            padding_mode=layer.padding_mode,
            device=device,
            dtype=dtype,
        )
        second = nn.Conv2d(rank, layer.out_channels, 1, bias=bias is not None, device=device, dtype=dtype)
    with torch.no_grad():
        first.weight.copy_(inner.reshape(first.weight.shape))
        second.weight.copy_(outer.reshape(second.weight.shape))
        if bias is not None:
            assert second.bias is not None  # made with a bias just above
            second.bias.copy_(bias)
    return FactorizedPair(first, second)


def gram_svd(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Returns the thin SVD `u, s, vh` of `matrix` (descending `s`) from the eigendecomposition of its Gram matrix.

    LAPACK's SVD of VGG16's 4096 x 25088 classifier weight takes minutes on one core; one matmul and one
    symmetric eigendecomposition on the smaller side take about a sixth of that (and batches of small matrices,
    as `arch.dsconv` has, run several times faster too). Squaring loses singular values below about 1e-8 of the
    largest (in float64), far under float32 weight precision, and whatever the noise in those directions,
    `u[:, :r] diag(s[:r]) vh[:r]` stays the projection of `matrix` onto the kept singular vectors, so truncation
    is still the best rank-r approximation.

    Args:
        matrix: A float64 tensor of shape (..., m, n); leading dimensions are a batch.
    """
    wide = matrix.shape[-2] <= matrix.shape[-1]
    short = matrix if wide else matrix.mT
    eigenvalues, vectors = torch.linalg.eigh(short @ short.mT)
    s = eigenvalues.flip(-1).clamp_min(0.0).sqrt()
    near = vectors.flip(-1)
    # Directions with (numerically) zero singular value get an arbitrary-length far vector; the floor keeps
    # them finite, and they are scaled by that zero again when the factors are built.
    floor = torch.finfo(s.dtype).eps * s[..., :1] + torch.finfo(s.dtype).tiny
    far = (short.mT @ near) / s.clamp_min(floor).unsqueeze(-2)
    return (near, s, far.mT) if wide else (far, s, near.mT)


def check(name: str, model: nn.Module, kinds: str, rank: int | None) -> None:
    """`LowRankSVD.check` (compressor `name`, `layers` = `kinds`)."""
    layers = factorizable_layers(model, kinds)
    if not layers:
        raise ValueError(
            f"no {_LAYER_KINDS[kinds]} layer to factorize; {name} with layers={kinds!r} needs at least one"
        )
    if rank is not None:
        for where, layer in layers:
            full_rank = min(layer.weight.shape[0], layer.weight[0].numel())
            if rank > full_rank:
                raise ValueError(f"rank {rank} exceeds layer {where or '(model)'}'s full rank {full_rank}")


def factorize_model(
    name: str, model: nn.Module, *, kinds: str, rank_ratio: float, energy: float | None, rank: int | None,
    skip_if_no_saving: bool,
) -> Compressed:  # fmt: skip
    """`LowRankSVD.apply` (compressor `name`, `layers` = `kinds`): a copy of `model` with every chosen layer
    factorized but those whose `.weight` the model's own code reads (attention that hands its projection's weight to
    a fused kernel), which a pair of layers cannot stand in for."""
    check(name, model, kinds, rank)
    factorized = copy.deepcopy(model)
    layers: dict[str, dict[str, Any]] = {}
    candidates = factorizable_layers(factorized, kinds)
    skipped = kept_for_readers(factorized, candidates, FactorizedPair.replacement)
    for where, layer in candidates:
        weight = layer.weight.detach()
        out_features, in_features = weight.shape[0], weight[0].numel()
        u, s, vh = gram_svd(weight.double().reshape(out_features, in_features))
        squares = s.square().cumsum(0)
        kept = _rank(squares, rank_ratio, energy, rank)
        dense = count_params(layer)
        bias = dense - weight.numel()
        low_rank = kept * (out_features + in_features) + bias
        done = where not in skipped and not (skip_if_no_saving and low_rank - bias >= weight.numel())
        if done:
            replacement = factorize(layer, u, s, vh, kept)
            factorized = replace_module(factorized, where, replacement)
        elif where not in skipped:
            skipped[where] = (
                f"no saving at rank {kept}: {kept} x ({out_features} + {in_features}) = "
                f"{low_rank - bias} >= {weight.numel()} weights"
            )
        layers[where] = {
            "rank": kept,
            "full_rank": len(s),
            "energy_kept": float(squares[kept - 1] / squares[-1]) if squares[-1] > 0 else 1.0,
            "params_before": dense,
            "params_after": low_rank if done else dense,
            "factorized": done,
        }
    info = {
        "layers_factorized": sum(layer["factorized"] for layer in layers.values()),
        "layers_skipped": {where: skipped[where] for where in layers if where in skipped},
        "params_before": count_params(model),
        "params_after": count_params(factorized),
        "layers": layers,
    }
    return Compressed(model=factorized, masks={}, info=info)


def _rank(squares: torch.Tensor, rank_ratio: float, energy: float | None, rank: int | None) -> int:
    """Picks a layer's rank from the cumulative sums of its squared singular values."""
    full_rank = len(squares)
    if rank is not None:
        return rank
    if energy is not None:
        # The total is the last cumulative sum, not a separate sum, so energy 1.0 reaches it exactly.
        shares = squares / squares[-1].clamp_min(torch.finfo(squares.dtype).tiny)
        return min(full_rank, int(torch.searchsorted(shares, energy)) + 1)
    return max(1, round(rank_ratio * full_rank))
