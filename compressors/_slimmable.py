"""The transform of `dynamic.width`: the reference sliced into a slimmable network, its widths trained together, and
the plain narrow model each cell runs."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional

from compressors._modules import count_params
from compressors._slim_modules import Slimmable, kept_channels
from compressors.base import Compressed, CompressorLimit, Executable, Training, TrainLoss

__all__ = [
    "LOSS_FUNCTIONS", "at_width", "check", "inplace_distillation", "labels_at_every_width", "run_at_width", "sliced",
    "trained_together",
]  # fmt: skip


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


LOSS_FUNCTIONS: dict[str, TrainLoss] = {"labels": labels_at_every_width, "inplace": inplace_distillation}


def _slimmable(model: nn.Module) -> Slimmable:
    if not isinstance(model, Slimmable):
        raise TypeError(f"dynamic.width runs a Slimmable, got {type(model).__name__}")
    return model


def _narrow(model: nn.Module, width: float) -> nn.Sequential:
    return _slimmable(model).narrow(width).eval()


def at_width(model: nn.Module, width: float) -> nn.Module:
    """`SlimmableWidth.measured`: the plain model of `width`."""
    return _narrow(model, width)


def check(model: nn.Module, widths: tuple[float, ...]) -> None:
    """`SlimmableWidth.check`."""
    if not isinstance(model, nn.Sequential):
        return
    try:
        plans = {width: kept_channels(model, width) for width in widths}
    except CompressorLimit:
        return
    seen: dict[str, float] = {}
    for width, plan in plans.items():
        key = repr(plan)
        if key in seen:
            raise ValueError(f"widths {seen[key]!r} and {width!r} keep the same channels of every layer; list"
                             " widths that differ on this model")  # fmt: skip
        seen[key] = width


def sliced(model: nn.Module, widths: tuple[float, ...]) -> Compressed:
    """`SlimmableWidth.apply`: the reference sliced at every width, untrained."""
    slim = _slim(model, widths)
    return Compressed(model=slim, masks={}, info=_facts(slim))


def trained_together(model: nn.Module, widths: tuple[float, ...], loss: str, training: Training) -> Compressed:
    """`SlimmableWidth.apply_trained`: every width trained together for the cell's budget, by the `loss` named."""
    slim = _slim(model, widths)
    sliced = {repr(width): training.evaluate(slim.narrow(width)) for width in slim.widths}
    training.fit(slim, training.steps, loss=LOSS_FUNCTIONS[loss])
    info = _facts(slim)
    for key, top1 in sliced.items():
        info["per_width"][key]["top1_sliced"] = top1
    info["training"] = {"steps": training.steps, "seed": training.seed, "loss": loss,
                        "widths_per_step": len(slim.widths)}  # fmt: skip
    return Compressed(model=slim, masks={}, info=info)


def run_at_width(model: nn.Module, width: float) -> Executable:
    """`SlimmableWidth.finalize`: the plain model of `width`."""
    share = f"{100 * width:g}%"
    return Executable(_narrow(model, width), executed_as=f"dense at width {width:g} ({share} of the"
                      " shared slimmable weights' channels)")  # fmt: skip


def _slim(model: nn.Module, widths: tuple[float, ...]) -> Slimmable:
    if not isinstance(model, nn.Sequential):
        raise CompressorLimit("slim", f"dynamic.width slims an nn.Sequential, got {type(model).__name__}")
    return Slimmable(model, widths).eval()


def _facts(slim: Slimmable) -> dict[str, Any]:
    """What the record keeps of the slimmable model: its widths, and per width the channels and parameters."""
    per_width: dict[str, dict[str, Any]] = {}
    for width, plan in zip(slim.widths, slim.plans, strict=True):
        narrow = slim.narrow(width)
        channels = [kept.outputs for layer, kept in zip(narrow, plan, strict=True)
                    if kept is not None and isinstance(layer, nn.Conv2d | nn.Linear)]  # fmt: skip
        per_width[repr(width)] = {"channels": channels, "params": count_params(narrow)}
    # One stored model serves every width: the full weights and each width's BatchNorm.
    return {"widths": list(slim.widths), "per_width": per_width, "params_shared": count_params(slim)}
