"""`arch.dsconv`: every standard KxK convolution becomes a depthwise-separable pair (MobileNet's building block).

The pair is initialized from the original weight, not at random, so accuracy before recovery already says how
much of the layer the separable form can express: for each input channel c, the slice W[:, c] (C_out x K*K) is
replaced by its best rank-1 approximation p[:, c] d_c^T (truncated SVD, computed as `lowrank.svd` does). A
depthwise KxK kernel d_c followed by pointwise weights p computes exactly sum_c p[:, c] (d_c * x_c), so this is
the closest member of the depthwise-separable family to the original conv, one input channel at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from compressors._lazy import lazy_exports
from compressors.base import CompressorConfig, Executable
from compressors.presentation import Presentation
from compressors.registry import register

if TYPE_CHECKING:
    import torch
    from torch import nn

    from compressors._dsconv import separable_pair, standard_convs
    from compressors.base import Compressed

__all__ = ["DepthwiseSeparable", "separable_pair", "standard_convs"]

__getattr__ = lazy_exports(__name__, "compressors._dsconv", ("separable_pair", "standard_convs"))


@register("arch.dsconv")
@dataclass(frozen=True)
class DepthwiseSeparable(CompressorConfig):
    """Replaces each standard KxK conv by depthwise KxK + pointwise 1x1, initialized by per-channel rank-1 SVD.

    Parameters and MACs of a replaced conv shrink by 1/C_out + 1/K^2 (the figure MobileNet states); whether that
    becomes speed depends on how well the target runs depthwise convs, which are memory-bound.

    Attributes:
        skip_first: Keep the model's first conv as it is. It sees the raw image (C_in 1 or 3), so it holds few
            parameters and MACs to save, while its approximation error reaches every later layer.
    """

    presentation = Presentation(short="dsconv", family="architecture")

    skip_first: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.skip_first, bool):
            raise ValueError(f"skip_first must be true or false, got {self.skip_first!r}")

    def check(self, model: nn.Module) -> None:
        """Raises ValueError if `model` has no conv to replace (with `skip_first`, besides the first one)."""
        from compressors._dsconv import check

        check(self.name, model, self.skip_first)

    def apply(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor] = ()
    ) -> Compressed:
        """Swaps every qualifying conv of a deep copy of `model` for its depthwise-separable pair.

        Args:
            model: The dense model; not mutated.
            example_input: The input MACs are counted at (whole batch); a conv that does not run on it counts
                0 MACs.

        Returns:
            The swapped copy (no masks) and info with `convs_replaced`, `convs_kept` (name -> why: the model's own
            code reads that conv's `.weight`, which a pair has not), totals over the replaced convs
            (`params_before`, `params_after`, `macs_before`, `macs_after`), whole-model `params_model_before`
            and `params_model_after`, and per conv in `layers`: its params and MACs before and after, the
            measured `params_ratio` (bias included), the `theoretical_ratio` 1/C_out + 1/K^2, and the
            `approximation_error` (relative Frobenius) of the rank-1 initialization.

        Raises:
            ValueError: As `check`, if no conv qualifies.
        """
        from compressors._dsconv import swap

        return swap(self.name, model, example_input, self.skip_first)

    def finalize(self, model: nn.Module) -> Executable:
        """Returns the model as is: both convs of each pair run on the target's ordinary dense kernels."""
        return Executable(model, executed_as="dense (depthwise + pointwise convs)", notes="")
