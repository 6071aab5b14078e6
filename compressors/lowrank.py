"""`lowrank.svd`: low-rank factorization of Linear and Conv2d weights by truncated SVD.

A weight W (O x I, a conv's flattened to O x C*kh*kw) becomes U_r sqrt(S_r) times sqrt(S_r) V_r^T, the best
rank-r approximation in the Frobenius norm (Eckart-Young), run as two layers: Linear(I, r) then Linear(r, O), or
a KxK conv to r channels then a 1x1 conv to O. Both are ordinary dense layers, so the saving is real on any
runtime, but only when r (O + I) < O I.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING

from compressors._checks import check_choice
from compressors._lazy import lazy_exports
from compressors.base import CompressorConfig, Executable
from compressors.presentation import Presentation, percent
from compressors.registry import register

if TYPE_CHECKING:
    import torch
    from torch import nn

    from compressors._lowrank import factorizable_layers, factorize, gram_svd
    from compressors.base import Compressed

__all__ = ["LowRankSVD", "factorizable_layers", "factorize", "gram_svd"]

__getattr__ = lazy_exports(__name__, "compressors._lowrank", ("factorizable_layers", "factorize", "gram_svd"))

_LAYERS = ("all", "linear", "conv")
_DEFAULT_RANK_RATIO = 0.5


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

    presentation = Presentation(
        short="svd", family="low-rank", headline=("rank_ratio",), formats={"rank_ratio": percent, "energy": percent}
    )

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
        from compressors._lowrank import check

        check(self.name, model, self.layers, self.rank)

    def apply(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor] = ()
    ) -> Compressed:
        """Factorizes every chosen layer of a deep copy of `model`.

        Args:
            model: The dense model; not mutated.
            example_input: Unused: the SVD needs only the weights.

        Returns:
            The factorized copy (no masks) and info with `layers_factorized` (count), `layers_skipped`
            (name -> why: no saving at its rank, or the model's own code reads its `.weight`), whole-model
            `params_before` and `params_after`, and per layer in `layers`: `rank`, `full_rank`, `energy_kept`
            (share of squared singular values kept), `params_before`, `params_after` and `factorized`.

        Raises:
            ValueError: As `check`.
        """
        from compressors._lowrank import factorize_model

        return factorize_model(
            self.name, model, kinds=self.layers, rank_ratio=self.rank_ratio, energy=self.energy, rank=self.rank,
            skip_if_no_saving=self.skip_if_no_saving,
        )  # fmt: skip

    def finalize(self, model: nn.Module) -> Executable:
        """Returns the model as is: both factors run on the target's ordinary dense kernels."""
        return Executable(model, executed_as="dense (factorized layers)", notes="")


def _check_share(field: str, value: object) -> float:
    """Checks that `value` is a number in (0, 1] and returns it as a float (so 1 and 1.0 are one config)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{field} must be a number in (0, 1], got {value!r}")
    # `value` on the left: numbers.Real promises only < and <=; `not value <= 1.0` also turns NaN away.
    if value <= 0.0 or not value <= 1.0:
        raise ValueError(f"{field} must be in (0, 1], got {value!r}")
    return float(value)
