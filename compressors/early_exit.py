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

import torch
from torch import nn

from compressors._checks import check_choice
from compressors._exits import (
    RULES,
    EarlyExitNet,
    MultiExit,
    build_multi_exit,
    exit_path,
    find_stages,
    max_entropy,
)  # fmt: skip
from compressors.base import Compressed, CompressorConfig, Executable, Training, TrainingFacts
from compressors.registry import register

__all__ = ["EarlyExit", "EarlyExitNet", "MultiExit", "exit_path", "find_stages", "parse_exits"]

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


def _loss(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """BranchyNet's joint objective with equal weights: the mean of every exit's cross-entropy."""
    assert isinstance(model, MultiExit)
    losses = [nn.functional.cross_entropy(logits, labels) for logits in model.exit_logits(images)]
    return torch.stack(losses).mean()


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
        found = find_stages(model)
        if not found:
            raise ValueError(
                f"exits: {type(model).__name__} has no stage an exit can follow (an nn.Sequential with pooling"
                " layers, or a torchvision ResNet)"
            )
        known = {stage.index for stage in found}
        missing = [stage for stage in self.stages if stage not in known]
        if missing:
            listed = ", ".join(f"{stage.index} ({stage.label})" for stage in found)
            name = type(model).__name__
            raise ValueError(f"exits: stage {missing[0]} is not a stage of {name}; its stages: {listed}")
        if self.rule == "entropy":
            classes = _classes(model)
            if classes is not None and self.threshold > max_entropy(classes):
                raise ValueError(
                    f"threshold for rule entropy must be in [0, ln({classes}) = {max_entropy(classes):.4f}] nats"
                    f" for a model of {classes} classes, got {self.threshold!r}"
                )

    def check_training(self, facts: TrainingFacts) -> None:
        """Refuse a cell without a training budget: untrained heads are never sure, so nothing would exit early."""
        if facts.steps < 1:
            raise ValueError(f"{self.name} trains its exit heads: finetune_steps must be >= 1, got {facts.steps}")

    def apply(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor] = ()
    ) -> Compressed:
        """The multi-exit network with untrained heads (each outputs a uniform softmax, so none is sure of
        anything and every input takes the final exit); the suite calls `apply_trained`."""
        net = build_multi_exit(model, self.stages, example_input, seed=0)
        return Compressed(model=net, masks={}, info=self._info(model, net, steps=0, exit_top1=None))

    def apply_trained(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor], training: Training
    ) -> Compressed:
        """New heads after `exits` (seeded with the cell's seed) on a copy of the trained `model`, every exit
        trained jointly for the cell's whole budget from the reference's weights."""
        net = build_multi_exit(model, self.stages, example_input, seed=training.seed)
        training.fit(net, training.steps, loss=_loss)
        net.eval()
        alone = [training.evaluate(exit_path(net, index)) for index in range(len(net.heads) + 1)]
        return Compressed(model=net, masks={}, info=self._info(model, net, steps=training.steps, exit_top1=alone))

    def finalize(self, model: nn.Module) -> Executable:
        """The scripted early-exit network: the decision is a branch of the saved graph, not a traced path."""
        assert isinstance(model, MultiExit)
        scripted = torch.jit.script(EarlyExitNet(model, self.rule, self.threshold).eval())
        relation = ">=" if self.rule == "confidence" else "<="
        executed_as = (
            f"early exit after stage {self.exits} ({self.rule} {relation} {self.threshold:g}), scripted control flow"
        )
        notes = "timed at batch 1 over a stream of real test inputs, each taking its own path"
        return Executable(scripted, executed_as=executed_as, notes=notes)

    def _info(self, model: nn.Module, net: MultiExit, steps: int, exit_top1: list[float] | None) -> dict[str, object]:
        """What the trained network is, whatever the rule: its exits, heads, loss and each exit's top-1 alone."""
        labels = {stage.index: stage.label for stage in find_stages(model)}
        return {
            "exits": list(self.stages),
            "exit_stages": [labels[stage] for stage in self.stages] + ["final"],
            "loss": "mean of every exit's cross-entropy (equal weights)",
            "head_params": sum(p.numel() for head in net.heads for p in head.parameters()),
            "trained_steps": steps,
            "exit_top1_alone": exit_top1,
        }


def _classes(model: nn.Module) -> int | None:
    """The number of classes: the out_features of the model's last Linear, None without one."""
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    return linears[-1].out_features if linears else None
