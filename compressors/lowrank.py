"""`lowrank.svd`: low-rank factorization of Linear and Conv2d weights by truncated SVD.

A weight W (O x I, a conv's flattened to O x C*kh*kw) becomes U_r sqrt(S_r) times sqrt(S_r) V_r^T, the best
rank-r approximation in the Frobenius norm (Eckart-Young), run as two layers: Linear(I, r) then Linear(r, O), or
a KxK conv to r channels then a 1x1 conv to O. Both are ordinary dense layers, so the saving is real on any
runtime, but only when r (O + I) < O I.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import torch
from torch import nn

from compressors._checks import check_choice
from compressors._modules import conv_pair, count_params, replace_module
from compressors.base import Compressed, CompressorConfig, Executable
from compressors.registry import register

__all__ = ["LowRankSVD", "factorizable_layers", "factorize", "gram_svd"]

_LAYERS = ("all", "linear", "conv")
_LAYER_KINDS = {
    "all": "nn.Linear or groups=1 nn.Conv2d",
    "linear": "nn.Linear",
    "conv": "groups=1 nn.Conv2d",
}
_DEFAULT_RANK_RATIO = 0.5


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
) -> nn.Sequential:
    """Builds the two-layer rank-`rank` form of `layer` from the SVD of its flattened weight.

    The singular values are split as square roots over both factors so the two weights have similar scales,
    which keeps fine-tuning with the original learning rate well conditioned.

    Args:
        layer: A layer accepted by `factorizable_layers`.
        u, s, vh: The thin SVD of `weight.reshape(O, -1)`, as `gram_svd` returns it.
        rank: How many singular values to keep, in [1, len(s)].

    Returns:
        `Sequential(first, second)`: first maps to `rank` features without bias (a conv keeps the kernel,
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
    return nn.Sequential(first, second)


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


@register("lowrank.svd")
@dataclass(frozen=True)
class LowRankSVD(CompressorConfig):
    """Factorizes Linear and Conv2d weights into two thinner layers by truncated SVD.

    The rank of each layer comes from exactly one of `rank_ratio`, `energy` or `rank`; `rank_ratio` counts as
    unset at its default, so `energy` or `rank` alone overrides it, and setting two is an error (a config whose
    rule is ignored would still get its own cell id).

    Attributes:
        rank_ratio: Share of each layer's full rank min(O, C*kh*kw) to keep, in (0, 1]:
            rank = max(1, round(rank_ratio * full rank)).
        energy: If set, in (0, 1]: per layer, the smallest rank whose singular values keep this share of the
            sum of squared singular values (the squared Frobenius norm of the weight).
        rank: If set, the same absolute rank for every layer; `check` refuses it when a layer's full rank is
            smaller.
        layers: Which layers to factorize: "all", "linear" or "conv" (groups=1 convs only).
        skip_if_no_saving: Leave a layer as it is when its factorized form would not be smaller, i.e. when
            r (O + C*kh*kw) >= O*C*kh*kw. A near-square layer needs r below about half its full rank to save
            anything; turn this off only to study the factorization itself (e.g. at full rank).
    """

    rank_ratio: float = _DEFAULT_RANK_RATIO
    energy: float | None = None
    rank: int | None = None
    layers: str = "all"
    skip_if_no_saving: bool = True

    def __post_init__(self) -> None:
        # object.__setattr__ is the documented way to normalize fields of a frozen dataclass.
        object.__setattr__(self, "rank_ratio", _check_share("rank_ratio", self.rank_ratio))
        if self.energy is not None:
            object.__setattr__(self, "energy", _check_share("energy", self.energy))
        if self.rank is not None and (isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1):
            raise ValueError(f"rank must be a positive integer, got {self.rank!r}")
        check_choice("layers", self.layers, _LAYERS)
        if not isinstance(self.skip_if_no_saving, bool):
            raise ValueError(f"skip_if_no_saving must be true or false, got {self.skip_if_no_saving!r}")
        chosen = [
            f"{key}={value!r}"
            for key, value, unset in (
                ("rank_ratio", self.rank_ratio, _DEFAULT_RANK_RATIO),
                ("energy", self.energy, None),
                ("rank", self.rank, None),
            )
            if value != unset
        ]
        if len(chosen) > 1:
            raise ValueError(f"set only one of rank_ratio, energy, rank; got {', '.join(chosen)}")

    def check(self, model: nn.Module) -> None:
        """Raises ValueError if `model` has no layer of the chosen kind, or `rank` exceeds a layer's full rank."""
        layers = factorizable_layers(model, self.layers)
        if not layers:
            raise ValueError(
                f"no {_LAYER_KINDS[self.layers]} layer to factorize; {self.name} with layers={self.layers!r} "
                "needs at least one"
            )
        if self.rank is not None:
            for name, layer in layers:
                full_rank = min(layer.weight.shape[0], layer.weight[0].numel())
                if self.rank > full_rank:
                    raise ValueError(f"rank {self.rank} exceeds layer {name or '(model)'}'s full rank {full_rank}")

    def apply(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor] = ()
    ) -> Compressed:
        """Factorizes every chosen layer of a deep copy of `model`.

        Args:
            model: The dense model; not mutated.
            example_input: Unused: the SVD needs only the weights.

        Returns:
            The factorized copy (no masks) and info with `layers_factorized` (count), `layers_skipped`
            (name -> why), whole-model `params_before` and `params_after`, and per layer in `layers`: `rank`,
            `full_rank`, `energy_kept` (share of squared singular values kept), `params_before`, `params_after`
            and `factorized`.

        Raises:
            ValueError: As `check`.
        """
        self.check(model)
        factorized = copy.deepcopy(model)
        layers: dict[str, dict[str, Any]] = {}
        skipped: dict[str, str] = {}
        for name, layer in factorizable_layers(factorized, self.layers):
            weight = layer.weight.detach()
            out_features, in_features = weight.shape[0], weight[0].numel()
            u, s, vh = gram_svd(weight.double().reshape(out_features, in_features))
            squares = s.square().cumsum(0)
            rank = self._rank(squares)
            dense = count_params(layer)
            bias = dense - weight.numel()
            low_rank = rank * (out_features + in_features) + bias
            done = not (self.skip_if_no_saving and low_rank - bias >= weight.numel())
            if done:
                replacement = factorize(layer, u, s, vh, rank)
                factorized = replace_module(factorized, name, replacement)
            else:
                skipped[name] = (
                    f"no saving at rank {rank}: {rank} x ({out_features} + {in_features}) = "
                    f"{low_rank - bias} >= {weight.numel()} weights"
                )
            layers[name] = {
                "rank": rank,
                "full_rank": len(s),
                "energy_kept": float(squares[rank - 1] / squares[-1]) if squares[-1] > 0 else 1.0,
                "params_before": dense,
                "params_after": low_rank if done else dense,
                "factorized": done,
            }
        info = {
            "layers_factorized": sum(layer["factorized"] for layer in layers.values()),
            "layers_skipped": skipped,
            "params_before": count_params(model),
            "params_after": count_params(factorized),
            "layers": layers,
        }
        return Compressed(model=factorized, masks={}, info=info)

    def finalize(self, model: nn.Module) -> Executable:
        """Returns the model as is: both factors run on the target's ordinary dense kernels."""
        return Executable(model, executed_as="dense (factorized layers)", notes="")

    def _rank(self, squares: torch.Tensor) -> int:
        """Picks a layer's rank from the cumulative sums of its squared singular values."""
        full_rank = len(squares)
        if self.rank is not None:
            return self.rank
        if self.energy is not None:
            # The total is the last cumulative sum, not a separate sum, so energy 1.0 reaches it exactly.
            shares = squares / squares[-1].clamp_min(torch.finfo(squares.dtype).tiny)
            return min(full_rank, int(torch.searchsorted(shares, self.energy)) + 1)
        return max(1, round(self.rank_ratio * full_rank))


def _check_share(field: str, value: object) -> float:
    """Checks that `value` is a number in (0, 1] and returns it as a float (so 1 and 1.0 are one config)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{field} must be a number in (0, 1], got {value!r}")
    # `value` on the left: numbers.Real promises only < and <=; `not value <= 1.0` also turns NaN away.
    if value <= 0.0 or not value <= 1.0:
        raise ValueError(f"{field} must be in (0, 1], got {value!r}")
    return float(value)
