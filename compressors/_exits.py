"""The modules of an early-exit network: where a backbone has stages, the trainable multi-exit form, and the
scripted executable whose forward at batch 1 returns at the first exit that is sure of its answer.

A *stage* is a place in the model's top-level order of layers after which an exit head can be attached: in a
top-level `nn.Sequential`, the output of a pooling layer that is not the last layer; in a torchvision ResNet, the
output of `layer1`, `layer2` or `layer3` (after `layer4` comes the model's own classifier). Stages are numbered
from 1 in forward order, so `exits = "1+2"` means a head after the first and one after the second stage.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeGuard

import torch
from torch import nn
from torchvision.models import ResNet

__all__ = [
    "EarlyExitNet", "ExitPath", "MultiExit", "Stage", "build_multi_exit", "exit_path", "find_stages",
    "max_entropy",
]  # fmt: skip

_POOLS = (nn.MaxPool2d, nn.AvgPool2d)
# A head average-pools its stage with a kernel of (side // 4) before its classifier: about four positions per side
# for a digit's layout, few enough multiply-accumulates that an exit stays far cheaper than the rest of the network.
# A fixed kernel, not an adaptive pool, because ONNX exports adaptive pooling only where the sizes divide.
_HEAD_SIDE = 4
_HEAD_HIDDEN = 128


@dataclass(frozen=True)
class Stage:
    """One place an exit head can go.

    Attributes:
        index: The stage's number, from 1 in forward order (what `exits` names).
        position: How many of the backbone's top-level layers run before the head.
        label: What the stage is, for messages and the record ("after MaxPool2d (layer 3)", "after layer2").
    """

    index: int
    position: int
    label: str


def _torchvision_resnet(model: nn.Module) -> TypeGuard[ResNet]:
    """torchvision's ResNet itself: a subclass may forward otherwise (the quantizable ResNet adds quantization
    stubs), so its order of layers is not known."""
    return type(model) is ResNet


def _layers(model: nn.Module) -> list[nn.Module] | None:
    """The model's top-level layers in forward order, or None for an architecture whose order is not known.

    A torchvision ResNet's forward is fixed (stem, four layers, pooling, flatten, classifier), so it is written out
    as that sequence; the modules are the model's own.
    """
    if isinstance(model, nn.Sequential):
        return list(model)
    if _torchvision_resnet(model):
        stem = [model.conv1, model.bn1, model.relu, model.maxpool]
        body = [model.layer1, model.layer2, model.layer3, model.layer4]
        return [*stem, *body, model.avgpool, nn.Flatten(1), model.fc]
    return None


def find_stages(model: nn.Module) -> list[Stage]:
    """Every stage of `model` an exit can follow, in forward order; [] where the model has none the suite knows."""
    layers = _layers(model)
    if layers is None:
        return []
    if _torchvision_resnet(model):
        return [Stage(k, 4 + k, f"after layer{k}") for k in (1, 2, 3)]
    stages: list[Stage] = []
    for position, layer in enumerate(layers[:-1], start=1):
        if isinstance(layer, _POOLS):
            stages.append(Stage(len(stages) + 1, position, f"after {type(layer).__name__} (layer {position})"))
    return stages


def max_entropy(classes: int) -> float:
    """The entropy of a uniform softmax over `classes`: the largest an entropy threshold can meaningfully be."""
    return math.log(classes)


def _head(channels: int, height: int, width: int, classes: int) -> nn.Module:
    """Pool, then a small MLP; its last layer starts at zero, so an untrained head outputs a uniform softmax and
    never claims to be sure of anything."""
    kernel = (max(1, height // _HEAD_SIDE), max(1, width // _HEAD_SIDE))
    features = channels * (height // kernel[0]) * (width // kernel[1])
    last = nn.Linear(_HEAD_HIDDEN, classes)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(
        nn.AvgPool2d(kernel), nn.Flatten(), nn.Linear(features, _HEAD_HIDDEN), nn.ReLU(), last
    )  # fmt: skip


class MultiExit(nn.Module):
    """The trainable form: the backbone cut into segments, a head after each, and the rest of the backbone.

    `forward` is the backbone alone (the final exit), so the suite's evaluation and MAC count of it are the
    reference's; `exit_logits` gives every exit's logits, for the joint loss.
    """

    def __init__(self, segments: Sequence[nn.Module], heads: Sequence[nn.Module], final: nn.Module) -> None:
        super().__init__()
        self.segments = nn.ModuleList(segments)
        self.heads = nn.ModuleList(heads)
        self.final = final

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for segment in self.segments:
            x = segment(x)
        return self.final(x)

    def exit_logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The logits of every exit, the heads' in order and the final exit's last."""
        outputs: list[torch.Tensor] = []
        for segment, head in zip(self.segments, self.heads, strict=True):
            x = segment(x)
            outputs.append(head(x))
        outputs.append(self.final(x))
        return outputs


def build_multi_exit(model: nn.Module, exits: tuple[int, ...], example: torch.Tensor, seed: int) -> MultiExit:
    """A copy of `model` cut at the stages `exits`, with a new head after each, drawn with `seed`.

    Args:
        model: The trained backbone; not mutated.
        exits: Stage numbers, ascending, each one of `find_stages(model)`.
        example: An input of the model's shape, to learn each stage's output shape and the number of classes.
        seed: Seeds the heads' hidden layers (the global generator is restored after).
    """
    model = copy.deepcopy(model).eval()
    layers = _layers(model)
    assert layers is not None, "find_stages found stages, so the layer order is known"
    positions = {stage.index: stage.position for stage in find_stages(model)}
    cuts = [0, *(positions[e] for e in exits)]
    segments = [nn.Sequential(*layers[start:end]) for start, end in zip(cuts, cuts[1:], strict=False)]
    final = nn.Sequential(*layers[cuts[-1] :])
    shapes = []
    with torch.no_grad():
        h = example[:1]
        for segment in segments:
            h = segment(h)
            shapes.append(tuple(h.shape))
        classes = int(final(h).shape[1])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        heads = [_head(shape[1], shape[2], shape[3], classes) for shape in shapes]
    return MultiExit(segments, heads, final).eval()


class ExitPath(nn.Module):
    """What an input that leaves at exit `index` computes: the segments up to it and every head on the way (the
    earlier heads ran and were not sure), for counting that exit's multiply-accumulates."""

    def __init__(self, net: MultiExit | EarlyExitNet, index: int) -> None:
        super().__init__()
        self.segments = nn.ModuleList(list(net.segments)[: index + 1])
        self.heads = nn.ModuleList(list(net.heads)[: index + 1])
        self.final = net.final if index == len(net.heads) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for segment, head in zip(self.segments, self.heads, strict=False):
            x = segment(x)
            outputs.append(head(x))
        if self.final is not None:
            outputs.append(self.final(x))
        return outputs[-1]


def exit_path(net: MultiExit | EarlyExitNet, index: int) -> ExitPath:
    """The sub-network an input leaving at exit `index` (0 = the first head, `len(net.heads)` = the final exit)
    runs."""
    if not 0 <= index <= len(net.heads):
        raise ValueError(f"exit index must be in 0..{len(net.heads)}, got {index}")
    return ExitPath(net, index).eval()


class EarlyExitNet(nn.Module):
    """The executable: at batch 1, stage after stage, each head's logits are returned as soon as the rule says
    the head is sure; otherwise the next stage runs, and the final exit is the backbone's own classifier.

    Scripted with `torch.jit.script`, the decision stays a branch in the saved graph (`prim::If`), so the time an
    input takes depends on the input, as it does in deployment. At batch > 1 no single branch fits every sample,
    so `forward` carries on with the samples no head was sure of (gathered out of the batch after each head) and
    puts each sample's logits back in its place: the rule's predictions, sample by sample, which is how the suite
    evaluates accuracy. The suite times batch 1 only: a batch's time depends on how many of its samples go on.
    """

    # Constants of the scripted graph: the rule's other branch is compiled away, and the threshold is inlined.
    __constants__ = ["entropy", "threshold"]

    def __init__(self, net: MultiExit, rule: str, threshold: float) -> None:
        super().__init__()
        self.segments = net.segments
        self.heads = net.heads
        self.final = net.final
        self.entropy = rule == "entropy"
        self.threshold = threshold

    def _sure(self, logits: torch.Tensor) -> torch.Tensor:
        """Per sample, whether the rule lets it leave with these logits."""
        log_p = torch.log_softmax(logits, dim=1)
        if self.entropy:
            return -(log_p.exp() * log_p).sum(dim=1) <= self.threshold
        return log_p.max(dim=1).values.exp() >= self.threshold

    @torch.jit.export
    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        """One input's logits and the exit it left at (0 = the first head, `len(heads)` = the final exit)."""
        if x.size(0) != 1:
            raise ValueError("EarlyExitNet.run takes one input (batch 1)")
        index = 0
        for segment, head in zip(self.segments, self.heads):  # noqa: B905 - TorchScript's zip takes no strict
            x = segment(x)
            logits = head(x)
            if bool(self._sure(logits)):
                return logits, index
            index += 1
        return self.final(x), index

    @torch.jit.export
    def decide(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For a batch: each sample's logits at its exit and that exit's index. Each stage runs on the samples no
        earlier head was sure of, so every sample takes its own path, as it would alone."""
        remaining = torch.arange(x.size(0), device=x.device)
        logits_parts: list[torch.Tensor] = []
        index_parts: list[torch.Tensor] = []
        exit_parts: list[torch.Tensor] = []
        index = 0
        for segment, head in zip(self.segments, self.heads):  # noqa: B905 - TorchScript's zip takes no strict
            x = segment(x)
            logits = head(x)
            sure = self._sure(logits)
            logits_parts.append(logits[sure])
            index_parts.append(remaining[sure])
            exit_parts.append(torch.full_like(remaining[sure], index))
            unsure = torch.logical_not(sure)
            x = x[unsure]
            remaining = remaining[unsure]
            index += 1
        logits_parts.append(self.final(x))
        index_parts.append(remaining)
        exit_parts.append(torch.full_like(remaining, index))
        order = torch.argsort(torch.cat(index_parts))
        return torch.cat(logits_parts)[order], torch.cat(exit_parts)[order]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.size(0) == 1:
            return self.run(x)[0]
        return self.decide(x)[0]
