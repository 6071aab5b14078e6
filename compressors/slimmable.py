"""`dynamic.width`: a slimmable network, one set of weights trained at several widths, run at any of them.

The widths of one config are trained together, once: `width` is an execution field, so every cell of a run that
differs only in it shares one trained model, and each cell times the plain narrow model that width switches to.
That is the one-model-that-switches a deployment gets, set beside one channel-pruned model per MAC budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING

from compressors._checks import check_choice
from compressors._lazy import lazy_exports
from compressors.base import CompressorConfig, TrainingFacts
from compressors.presentation import Presentation, percent
from compressors.registry import register

if TYPE_CHECKING:
    import torch
    from torch import nn

    from compressors._slimmable import inplace_distillation, labels_at_every_width
    from compressors.base import Compressed, Executable, Training

__all__ = ["LOSSES", "SlimmableWidth", "inplace_distillation", "labels_at_every_width", "parse_widths"]

__getattr__ = lazy_exports(__name__, "compressors._slimmable", ("inplace_distillation", "labels_at_every_width"))

LOSSES = ("labels", "inplace")
"""How a step trains the widths: `labels_at_every_width` or `inplace_distillation`."""
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
    presentation = Presentation(short="slim", family="dynamic", headline=("width",), formats={"width": percent})

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
        check_choice("loss", self.loss, LOSSES)

    def check(self, model: nn.Module) -> None:
        """Rejects widths that keep the same channels of every layer of `model` (its layers are too narrow to tell
        them apart); a model it cannot slim at all is a limit `apply` reports."""
        from compressors._slimmable import check

        check(model, parse_widths(self.widths))

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
        from compressors._slimmable import sliced

        return sliced(model, parse_widths(self.widths))

    def apply_trained(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor], training: Training
    ) -> Compressed:
        """Slims a copy of `model` (warm start: every width begins as the reference's first channels) and trains all
        widths together for `training.steps` mini-batches with the `loss` of every step.

        Returns:
            The trained slimmable model and its facts: per width the channels each Conv2d/Linear keeps, the
            parameters, and the top-1 of the reference sliced at that width before training (`top1_sliced`).
        """
        from compressors._slimmable import trained_together

        return trained_together(model, parse_widths(self.widths), self.loss, training)

    def measured(self, model: nn.Module) -> nn.Module:
        """The plain model of `width`, whose parameters and MACs are the cell's (not the shared widest model's)."""
        from compressors._slimmable import at_width

        return at_width(model, self.width)

    def finalize(self, model: nn.Module) -> Executable:
        """The plain model of `width`: Conv2d/Linear layers as narrow as a model built at that width, holding copies
        of the shared weights' first channels, and that width's own BatchNorm."""
        from compressors._slimmable import run_at_width

        return run_at_width(model, self.width)
