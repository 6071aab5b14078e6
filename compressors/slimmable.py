"""`dynamic.width`: a slimmable network, one set of weights trained at several widths, run at any of them.

The widths of one config are trained together, once: `width` is an execution field, so every cell of a run that
differs only in it shares one trained model, and each cell times the plain narrow model that width switches to.
That is the one-model-that-switches a deployment gets, set beside one channel-pruned model per MAC budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from compressors._checks import check_choice
from compressors._modules import count_params
from compressors._slim_modules import Slimmable, kept_channels
from compressors.base import (
    Compressed,
    CompressorConfig,
    CompressorLimit,
    Executable,
    Training,
    TrainingFacts,
    TrainLoss,
)
from compressors.registry import register

__all__ = ["SlimmableWidth", "inplace_distillation", "labels_at_every_width", "parse_widths"]

_SEPARATOR = "/"
_WIDTHS_FORM = f"widths in (0, 1] joined by '{_SEPARATOR}', one of them 1.0, e.g. '0.25/0.5/0.75/1.0'"


def _in_unit_interval(value: float) -> bool:
    # `not value <= 1.0` also turns NaN away.
    return value > 0.0 and value <= 1.0


def parse_widths(text: object) -> tuple[float, ...]:
    """The widths of `text` ('0.25/0.5/1.0'), ascending.

    '/' joins them because ',' separates the values of a grid on the command line (and a TOML list is a grid too),
    while a set of widths is one value: the widths one model is trained at together.

    Raises:
        ValueError: Not a string, an entry that is no number, a width outside (0, 1], one given twice, or no 1.0.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"widths must be {_WIDTHS_FORM}; got {text!r}")
    widths: list[float] = []
    for item in text.split(_SEPARATOR):
        try:
            width = float(item)
        except ValueError:
            raise ValueError(f"widths must be {_WIDTHS_FORM}; {item.strip()!r} in {text!r} is not a number") from None
        if not _in_unit_interval(width):
            raise ValueError(f"widths must each be in (0, 1]; got {item.strip()} in {text!r}")
        if width in widths:
            raise ValueError(f"widths lists {width!r} twice in {text!r}")
        widths.append(width)
    if 1.0 not in widths:
        # Every width is a slice of the full one, which starts as the trained reference and is the teacher of in-place
        # distillation; without it the outer channels would be stored, and trained by no width.
        raise ValueError(f"widths must include 1.0, the reference's own width that the others slice; got {text!r}")
    return tuple(sorted(widths))


def labels_at_every_width(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The slimmable loss of one mini-batch: cross-entropy on the labels at every width, summed, so one step trains
    all of them (Yu et al. 2019 accumulate every switch's gradient before the update the same way)."""
    slim = _slimmable(model)
    return torch.stack([functional.cross_entropy(slim.run(images, width), labels) for width in slim.widths]).sum()


def inplace_distillation(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The full width on the labels, every other width on the full width's predictions (Yu & Huang, "Universally
    Slimmable Networks", 2019), summed.

    With a few fixed widths every width runs every step (the sandwich rule samples widths only where there are too
    many to run); the full width's output is detached, so the narrow widths learn from the wide one and do not
    pull its predictions toward theirs.
    """
    slim = _slimmable(model)
    full = slim.run(images, slim.widths[-1])
    loss = functional.cross_entropy(full, labels)
    teacher = functional.log_softmax(full.detach(), dim=1)
    for width in slim.widths[:-1]:
        student = functional.log_softmax(slim.run(images, width), dim=1)
        loss = loss + functional.kl_div(student, teacher, reduction="batchmean", log_target=True)
    return loss


_LOSSES: dict[str, TrainLoss] = {"labels": labels_at_every_width, "inplace": inplace_distillation}


def _slimmable(model: nn.Module) -> Slimmable:
    if not isinstance(model, Slimmable):
        raise TypeError(f"dynamic.width runs a Slimmable, got {type(model).__name__}")
    return model


def _narrow(model: nn.Module, width: float) -> nn.Sequential:
    return _slimmable(model).narrow(width).eval()


@register("dynamic.width")
@dataclass(frozen=True)
class SlimmableWidth(CompressorConfig):
    """Trains the reference's weights at every one of `widths` together and runs the cell at `width`.

    Attributes:
        widths: The widths trained together, as fractions of each hidden layer's channels, joined by '/'
            (`parse_widths`); stored in one canonical form (ascending) so equal sets make equal cells.
        width: The width this cell runs at, one of `widths`. An execution field: the cells of the other widths
            share the trained model.
        loss: How each step trains the widths: "labels" (cross-entropy at every width) or "inplace" (in-place
            distillation from the full width). "labels" is the default because, warm-started from a trained
            reference, the narrow widths gain nothing measurable from the full width's soft labels while the full
            width loses a little to the pull of the narrow ones (the width study runs both).
    """

    execution_fields = ("width",)
    trains = True

    widths: str = "0.25/0.5/0.75/1.0"
    width: float = 1.0
    loss: str = "labels"

    def __post_init__(self) -> None:
        widths = parse_widths(self.widths)
        # object.__setattr__ is the documented way to normalize fields of a frozen dataclass.
        object.__setattr__(self, "widths", _SEPARATOR.join(repr(width) for width in widths))
        if isinstance(self.width, bool) or not isinstance(self.width, Real) or not _in_unit_interval(self.width):
            raise ValueError(f"width must be in (0, 1], one of widths {self.widths}; got {self.width!r}")
        if float(self.width) not in widths:
            raise ValueError(f"width must be one of widths {self.widths}; got {self.width!r}")
        object.__setattr__(self, "width", float(self.width))
        check_choice("loss", self.loss, tuple(_LOSSES))

    def check(self, model: nn.Module) -> None:
        """Rejects widths that keep the same channels of every layer of `model` (its layers are too narrow to tell
        them apart); a model it cannot slim at all is a limit `apply` reports."""
        if not isinstance(model, nn.Sequential):
            return
        try:
            plans = {width: kept_channels(model, width) for width in parse_widths(self.widths)}
        except CompressorLimit:
            return
        seen: dict[str, float] = {}
        for width, plan in plans.items():
            key = repr(plan)
            if key in seen:
                raise ValueError(f"widths {seen[key]!r} and {width!r} keep the same channels of every layer; list"
                                 " widths that differ on this model")  # fmt: skip
            seen[key] = width

    def check_training(self, facts: TrainingFacts) -> None:
        """Refuses a cell with no training: slicing a model that never learned to be sliced is not a slimmable
        network."""
        if facts.steps <= 0:
            raise ValueError(f"{self.name} trains its widths together: it needs finetune_steps > 0, got {facts.steps}")

    def apply(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor] = ()
    ) -> Compressed:
        """The reference sliced at every width, untrained: what `apply_trained` starts from.

        Raises:
            CompressorLimit: `model` is not an nn.Sequential of layers `kept_channels` can follow.
        """
        slim = self._slim(model)
        return Compressed(model=slim, masks={}, info=self._facts(slim))

    def apply_trained(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor], training: Training
    ) -> Compressed:
        """Slims a copy of `model` (warm start: every width begins as the reference's first channels) and trains all
        widths together for `training.steps` mini-batches with the `loss` of every step.

        Returns:
            The trained slimmable model and its facts: per width the channels each Conv2d/Linear keeps, the
            parameters, and the top-1 of the reference sliced at that width before training (`top1_sliced`).
        """
        slim = self._slim(model)
        sliced = {repr(width): training.evaluate(slim.narrow(width)) for width in slim.widths}
        training.fit(slim, training.steps, loss=_LOSSES[self.loss])
        info = self._facts(slim)
        for key, top1 in sliced.items():
            info["per_width"][key]["top1_sliced"] = top1
        info["training"] = {"steps": training.steps, "seed": training.seed, "loss": self.loss,
                            "widths_per_step": len(slim.widths)}  # fmt: skip
        return Compressed(model=slim, masks={}, info=info)

    def measured(self, model: nn.Module) -> nn.Module:
        """The plain model of `width`, whose parameters and MACs are the cell's (not the shared widest model's)."""
        return _narrow(model, self.width)

    def finalize(self, model: nn.Module) -> Executable:
        """The plain model of `width`: Conv2d/Linear layers as narrow as a model built at that width, holding copies
        of the shared weights' first channels, and that width's own BatchNorm."""
        share = f"{100 * self.width:g}%"
        return Executable(_narrow(model, self.width), executed_as=f"dense at width {self.width:g} ({share} of the"
                          " shared slimmable weights' channels)")  # fmt: skip

    def _slim(self, model: nn.Module) -> Slimmable:
        if not isinstance(model, nn.Sequential):
            raise CompressorLimit("slim", f"dynamic.width slims an nn.Sequential, got {type(model).__name__}")
        return Slimmable(model, parse_widths(self.widths)).eval()

    def _facts(self, slim: Slimmable) -> dict[str, Any]:
        """What the record keeps of the slimmable model: its widths, and per width the channels and parameters."""
        per_width: dict[str, dict[str, Any]] = {}
        for width, plan in zip(slim.widths, slim.plans, strict=True):
            narrow = slim.narrow(width)
            channels = [kept.outputs for layer, kept in zip(narrow, plan, strict=True)
                        if kept is not None and isinstance(layer, nn.Conv2d | nn.Linear)]  # fmt: skip
            per_width[repr(width)] = {"channels": channels, "params": count_params(narrow)}
        # One stored model serves every width: the full weights and each width's BatchNorm.
        return {"widths": list(slim.widths), "per_width": per_width, "params_shared": count_params(slim)}
