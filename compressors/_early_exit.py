"""The transform of `dynamic.early_exit`: heads attached and trained jointly on a copy of the trained model, and
the scripted network that stops at the first sure head."""

from __future__ import annotations

import torch
from torch import nn

from compressors._exits import EarlyExitNet, MultiExit, build_multi_exit, exit_path, find_stages, max_entropy
from compressors.base import Compressed, Executable, Training

__all__ = ["attach", "attach_trained", "check", "script"]


def _loss(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """BranchyNet's joint objective with equal weights: the mean of every exit's cross-entropy."""
    assert isinstance(model, MultiExit)
    losses = [nn.functional.cross_entropy(logits, labels) for logits in model.exit_logits(images)]
    return torch.stack(losses).mean()


def check(model: nn.Module, stages: tuple[int, ...], rule: str, threshold: float) -> None:
    """`EarlyExit.check`."""
    found = find_stages(model)
    if not found:
        raise ValueError(
            f"exits: {type(model).__name__} has no stage an exit can follow (an nn.Sequential with pooling"
            " layers, or a torchvision ResNet)"
        )
    known = {stage.index for stage in found}
    missing = [stage for stage in stages if stage not in known]
    if missing:
        listed = ", ".join(f"{stage.index} ({stage.label})" for stage in found)
        name = type(model).__name__
        raise ValueError(f"exits: stage {missing[0]} is not a stage of {name}; its stages: {listed}")
    if rule == "entropy":
        classes = _classes(model)
        if classes is not None and threshold > max_entropy(classes):
            raise ValueError(
                f"threshold for rule entropy must be in [0, ln({classes}) = {max_entropy(classes):.4f}] nats"
                f" for a model of {classes} classes, got {threshold!r}"
            )


def attach(model: nn.Module, stages: tuple[int, ...], example_input: torch.Tensor) -> Compressed:
    """`EarlyExit.apply`: untrained heads after `stages`."""
    net = build_multi_exit(model, stages, example_input, seed=0)
    return Compressed(model=net, masks={}, info=_info(model, net, stages, steps=0, exit_top1=None))


def attach_trained(
    model: nn.Module, stages: tuple[int, ...], example_input: torch.Tensor, training: Training
) -> Compressed:
    """`EarlyExit.apply_trained`: heads after `stages` seeded with the cell's seed, every exit trained jointly."""
    net = build_multi_exit(model, stages, example_input, seed=training.seed)
    training.fit(net, training.steps, loss=_loss)
    net.eval()
    alone = [training.evaluate(exit_path(net, index)) for index in range(len(net.heads) + 1)]
    return Compressed(model=net, masks={}, info=_info(model, net, stages, steps=training.steps, exit_top1=alone))


def script(model: nn.Module, exits: str, rule: str, threshold: float) -> Executable:
    """`EarlyExit.finalize`: the scripted early-exit network."""
    assert isinstance(model, MultiExit)
    scripted = torch.jit.script(EarlyExitNet(model, rule, threshold).eval())
    relation = ">=" if rule == "confidence" else "<="
    executed_as = f"early exit after stage {exits} ({rule} {relation} {threshold:g}), scripted control flow"
    notes = "timed at batch 1 over a stream of real test inputs, each taking its own path"
    return Executable(scripted, executed_as=executed_as, notes=notes)


def _info(
    model: nn.Module, net: MultiExit, stages: tuple[int, ...], steps: int, exit_top1: list[float] | None
) -> dict[str, object]:
    """What the trained network is, whatever the rule: its exits, heads, loss and each exit's top-1 alone."""
    labels = {stage.index: stage.label for stage in find_stages(model)}
    return {
        "exits": list(stages),
        "exit_stages": [labels[stage] for stage in stages] + ["final"],
        "loss": "mean of every exit's cross-entropy (equal weights)",
        "head_params": sum(p.numel() for head in net.heads for p in head.parameters()),
        "trained_steps": steps,
        "exit_top1_alone": exit_top1,
    }


def _classes(model: nn.Module) -> int | None:
    """The number of classes: the out_features of the model's last Linear, None without one."""
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    return linears[-1].out_features if linears else None
