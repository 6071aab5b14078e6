"""`dynamic.early_exit`: BranchyNet-style exit heads after chosen stages of a trained model, trained jointly, and
an executable that stops at the first head sure of its answer.

Teerapittayanon et al. (BranchyNet, 2016) attach small classifiers ("branches") to a network and train all exits
at once on a weighted sum of their losses; at inference an input leaves at the first branch whose softmax entropy
is below a threshold. Here the backbone is the suite's trained reference (its weights are the starting point), the
heads are new, and the joint loss weights every exit equally (see `EarlyExit`). Two rules are offered: max-softmax
confidence >= threshold, or entropy <= threshold (BranchyNet's).

The rule and the threshold only choose how the trained network executes (`execution_fields`), so every threshold
of a run shares one jointly trained model. What an input costs depends on the input, so expected MACs (each
exit's share of the test inputs times that exit's MACs) are the theoretical figure, and latency is timed over a
stream of real inputs at batch 1 (`input_dependent`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING

from compressors._checks import check_choice
from compressors._lazy import lazy_exports
from compressors.base import CompressorConfig, TrainingFacts
from compressors.presentation import Presentation, template, words
from compressors.registry import register

if TYPE_CHECKING:
    import torch
    from torch import nn

    from compressors._exits import EarlyExitNet, MultiExit, exit_path, find_stages
    from compressors.base import Compressed, Executable, Training

__all__ = ["RULES", "EarlyExit", "EarlyExitNet", "MultiExit", "exit_path", "find_stages", "parse_exits"]

__getattr__ = lazy_exports(__name__, "compressors._exits", ("EarlyExitNet", "MultiExit", "exit_path", "find_stages"))

RULES = ("confidence", "entropy")
"""The exit rules: max-softmax confidence >= threshold, or entropy of the softmax (nats) <= threshold."""

_SEPARATOR = "+"  # not ",", which separates a grid's values on the command line


def parse_exits(value: object) -> tuple[int, ...]:
    """Stage numbers from `exits` ("1", "1+2", or an int), ascending and distinct.

    Raises:
        ValueError: Not stage numbers >= 1, or one given twice.
    """
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    accepted = f'stage numbers >= 1 joined by \'{_SEPARATOR}\', e.g. "1" or "1+2"'
    if not isinstance(text, str) or not text:
        raise ValueError(f"exits must be {accepted}; got {value!r}")
    parts = text.split(_SEPARATOR)
    if not all(part.strip().isdigit() and int(part) >= 1 for part in parts):
        raise ValueError(f"exits must be {accepted}; got {value!r}")
    stages = tuple(int(part) for part in parts)
    if len(set(stages)) != len(stages):
        raise ValueError(f"exits names a stage twice: {value!r}")
    return tuple(sorted(stages))


@register("dynamic.early_exit")
@dataclass(frozen=True)
class EarlyExit(CompressorConfig):
    """Exit heads after chosen stages, trained jointly; an input leaves at the first head sure of its answer.

    Attributes:
        exits: The stages (numbered from 1, see `compressors._exits`) after which a head is attached, joined by
            "+": "1", "1+2". Which stages a model has: `find_stages` (the error for a wrong one lists them).
        rule: "confidence" (leave when the largest softmax probability >= threshold) or "entropy" (leave when the
            softmax's entropy in nats <= threshold).
        threshold: For confidence in (0, 1]; for entropy in [0, ln(classes)] (checked against the model).

    The joint loss weights every exit equally, not as a field: a weight would be part of what is trained, so
    every weight of a grid would train a network of its own, and equal weights keep the final exit's own loss in
    the objective (its top-1 alone is recorded, so what joint training cost it shows).
    """

    execution_fields = ("rule", "threshold")
    trains = True
    input_dependent = True
    presentation = Presentation(
        short="exit", family="dynamic", headline=("exits", "rule", "threshold"),
        formats={"exits": template("{}"), "threshold": template("{}"),
                 "rule": words({"confidence": "conf", "entropy": "ent"})},
    )  # fmt: skip

    exits: str = "1"
    rule: str = "confidence"
    threshold: float = 0.9

    def __post_init__(self) -> None:
        stages = parse_exits(self.exits)
        object.__setattr__(self, "exits", _SEPARATOR.join(map(str, stages)))
        check_choice("rule", self.rule, RULES)
        threshold = self.threshold
        if isinstance(threshold, bool) or not isinstance(threshold, Real) or math.isnan(threshold):
            raise ValueError(f"threshold must be a number, got {threshold!r}")
        if self.rule == "confidence" and not 0 < threshold <= 1:
            raise ValueError(f"threshold for rule confidence must be in (0, 1], got {threshold!r}")
        if self.rule == "entropy" and not 0 <= threshold < math.inf:
            raise ValueError(f"threshold for rule entropy must be in [0, ln(classes)] nats, got {threshold!r}")
        object.__setattr__(self, "threshold", float(threshold))

    @property
    def stages(self) -> tuple[int, ...]:
        """The stage numbers of `exits`."""
        return parse_exits(self.exits)

    def check(self, model: nn.Module) -> None:
        """Refuse stages the model does not have, and an entropy threshold above the model's largest entropy."""
        from compressors._early_exit import check

        check(model, self.stages, self.rule, self.threshold)

    def check_training(self, facts: TrainingFacts) -> None:
        """Refuse a cell without a training budget: untrained heads are never sure, so nothing would exit early."""
        if facts.steps < 1:
            raise ValueError(f"{self.name} trains its exit heads: finetune_steps must be >= 1, got {facts.steps}")

    def apply(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor] = ()
    ) -> Compressed:
        """The multi-exit network with untrained heads (each outputs a uniform softmax, so none is sure of
        anything and every input takes the final exit); the suite calls `apply_trained`."""
        from compressors._early_exit import attach

        return attach(model, self.stages, example_input)

    def apply_trained(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor], training: Training
    ) -> Compressed:
        """New heads after `exits` (seeded with the cell's seed) on a copy of the trained `model`, every exit
        trained jointly for the cell's whole budget from the reference's weights."""
        from compressors._early_exit import attach_trained

        return attach_trained(model, self.stages, example_input, training)

    def finalize(self, model: nn.Module) -> Executable:
        """The scripted early-exit network: the decision is a branch of the saved graph, not a traced path."""
        from compressors._early_exit import script

        return script(model, self.exits, self.rule, self.threshold)
