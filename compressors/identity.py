"""The `none` compressor: the uncompressed baseline, run through the same pipeline as every other cell."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from compressors.base import Compressed, CompressorConfig
from compressors.presentation import Presentation
from compressors.registry import register

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["NoCompression"]


@register("none")
@dataclass(frozen=True)
class NoCompression(CompressorConfig):
    """Leaves the model as it is, so the baseline row is measured exactly like the compressed ones."""

    recoverable = False
    presentation = Presentation(short="none", family="baseline")

    def apply(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor] = ()
    ) -> Compressed:
        """Returns a deep copy of `model` with no masks and no facts."""
        return Compressed(model=copy.deepcopy(model), masks={}, info={})
