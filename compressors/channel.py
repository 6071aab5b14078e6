"""`prune.channel`: structured filter pruning that physically removes channels, sized by a MAC budget.

torch-pruning's DependencyGraph keeps coupled layers consistent (residual adds, depthwise convs, BatchNorm),
so the result is a smaller dense model that any runtime executes without sparse kernels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from compressors._checks import check_choice, check_fraction
from compressors.base import CompressorConfig, Executable
from compressors.presentation import SERIES, Presentation, percent
from compressors.registry import register

if TYPE_CHECKING:
    import torch
    from torch import nn

    from compressors.base import Compressed

__all__ = ["CRITERIA", "ChannelPruning"]

CRITERIA = ("l1", "bn_gamma", "fpgm", "apoz")
"""How channels can be ranked; `compressors._criteria` has what each means."""


@register("prune.channel")
@dataclass(frozen=True)
class ChannelPruning(CompressorConfig):
    """Removes the same fraction of channels from every prunable layer, chosen to hit a MAC budget.

    The budget is in MACs rather than channels so a channel-pruned model can be compared with an
    unstructured-pruned one of the same theoretical cost (sparsity s removes about s of the MACs).

    Attributes:
        macs_removed: Fraction of the dense model's MACs (at the example input's shape) to remove, in [0, 1).
        criterion: How channels are ranked: "l1" (filter L1 norm), "bn_gamma" (network slimming), "fpgm"
            (geometric median) or "apoz" (activation sparsity on the calibration inputs); see `_criteria`.
    """

    presentation = Presentation(
        short="channel", family="channel", headline=("macs_removed",), formats={"macs_removed": percent},
        series=SERIES[2],
    )  # fmt: skip

    macs_removed: float = 0.5
    criterion: str = "l1"

    def __post_init__(self) -> None:
        # object.__setattr__ is the documented way to normalize fields of a frozen dataclass.
        object.__setattr__(self, "macs_removed", check_fraction("macs_removed", self.macs_removed))
        check_choice("criterion", self.criterion, CRITERIA)

    def check(self, model: nn.Module) -> None:
        """Rejects a criterion with nothing to rank in `model` (bn_gamma without BatchNorm)."""
        from compressors._criteria import check_criterion

        check_criterion(self.criterion, model)

    def apply(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor] = ()
    ) -> Compressed:
        """Prunes channels of a copy of `model` until its MACs match the budget.

        A uniform per-layer channel ratio is searched (each trial on a fresh copy) until the pruned/dense MAC
        ratio is within 0.01 of `1 - macs_removed`, or the closest of 12 trials is kept. The classifier's
        outputs are never pruned.

        Args:
            model: The dense model; not mutated.
            example_input: The input shape MACs are counted at; also used to trace the graph.

        Returns:
            The pruned model (plain modules, no masks) and info with `pruning_ratio`, `macs_dense`,
            `macs_pruned`, `macs_removed_achieved`, `params_dense` and `params_pruned`.

        Raises:
            CompressorLimit: If the model has multi-head attention blocks (`nn.MultiheadAttention`, or modules with
                an integer `num_heads`-like head count: torchvision's ViT, Swin, MaxViT), refused before anything is
                traced; or if torch-pruning cannot follow a reshape (a channel shuffle).
            ValueError: If the model's output is not a tensor of at least 2 dimensions.
            RuntimeError: If pruning changed the output shape (a layer feeding the output was not recognized).
        """
        from compressors._channel import prune

        return prune(
            self.name, model, example_input, calibration, macs_removed=self.macs_removed, criterion=self.criterion
        )

    def finalize(self, model: nn.Module) -> Executable:
        """Returns the model as is: removed channels need no special kernel."""
        return Executable(model, executed_as="dense (channels removed)", notes="")
