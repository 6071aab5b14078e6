"""A compressor the suite does not ship, written as a user's plugin would be: one module, one config class that
declares its own presentation, registered by name, and no line of `bench/` touched.

Importing this module registers `test.halve`; `tests/bench/test_new_compressor.py` imports it into a copy of the
registry, so no other test sees it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from compressors import Compressed, CompressorConfig, Presentation, register
from compressors.presentation import template

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["FAMILY", "NAME", "Halve"]

NAME = "test.halve"
FAMILY = "halving"
"""A family no built-in compressor has, so the report must place and colour it on its own."""


@register(NAME)
@dataclass(frozen=True)
class Halve(CompressorConfig):
    """Halves every parameter `times` times: a transform whose effect is plain to see and that needs no data.

    Attributes:
        times: How many times to halve, >= 1.
    """

    presentation = Presentation(short="halve", family=FAMILY, headline=("times",), formats={"times": template("x{}")})

    times: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.times, bool) or not isinstance(self.times, int) or self.times < 1:
            raise ValueError(f"times must be an integer >= 1, got {self.times!r}")

    def apply(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor] = ()
    ) -> Compressed:
        """A copy of `model` with every parameter multiplied by 0.5 ** times."""
        import torch

        halved = copy.deepcopy(model)
        with torch.no_grad():
            for parameter in halved.parameters():
                parameter.mul_(0.5**self.times)
        return Compressed(model=halved, masks={}, info={"factor": 0.5**self.times})
