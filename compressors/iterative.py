"""`prune.iterative`: iterative magnitude pruning with rewinding, the lottery ticket method and its controls.

Each round prunes `rate` of the surviving weights by magnitude, resets the survivors by `rewind` and trains them
under the mask; round 0 is the trained reference itself. What the rewinds compare:

- "init": the survivors go back to the reference's initial values, the winning ticket of Frankle & Carbin (2019).
- "early": back to their values after `rewind_step` steps of the reference's training, late rewinding (Frankle et
  al. 2020), which found tickets in networks where rewinding to step 0 does not.
- "none": kept as trained, i.e. gradual pruning with fine-tuning between rounds.
- "reinit": the control. Its masks come from the same rounds as the ticket's (rewound to init in between, so with
  the same seed they are the very same masks), and the last round re-draws the survivors at random: the ticket's
  structure without its initialization, as Frankle & Carbin's random reinitialization.

The cell's whole training budget is split evenly over the rounds (the remainder to the last), so a one-shot
`prune.unstructured` cell at the final sparsity with the same fine-tuning steps has the same total budget. A
ticket is unstructured sparsity: it executes as dense kernels over stored zeros (or CSR), never as a smaller net.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from compressors._checks import check_choice
from compressors.base import CompressorConfig, TrainingFacts
from compressors.presentation import Presentation, percent, template
from compressors.registry import register
from compressors.unstructured import UnstructuredPruning

if TYPE_CHECKING:
    import torch
    from torch import nn

    from compressors.base import Compressed, Executable, Training

__all__ = ["IterativePruning", "REWINDS"]

REWINDS = ("init", "early", "none", "reinit")
_SCOPES = ("global", "layer")
_EXECUTIONS = ("dense", "csr")
_INITIAL_WEIGHTS = "stored only for models the suite trains, beside the cached trained reference"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@register("prune.iterative")
@dataclass(frozen=True)
class IterativePruning(CompressorConfig):
    """Prunes `rate` of the surviving weights in each of `rounds` rounds, rewinding and training in between.

    Attributes:
        rate: Share of the remaining prunable weights removed each round, in (0, 1); after r rounds the sparsity is
            1 - (1 - rate)^r (exactly round(that * n) zeros, n counted as `scope` says).
        rounds: Prune-rewind-train rounds, >= 1; each trains budget / rounds steps.
        rewind: What the survivors are reset to after each prune: "init", "early", "none" or "reinit" (see the
            module docstring).
        rewind_step: The step of the reference's training that "early" rewinds to (0 is the same as "init"); it
            must be 0 for the other rewinds, so no record names a step it did not use.
        scope: "global" ranks all prunable weights against one threshold; "layer" prunes each layer by `rate`.
        execution: How `finalize` runs the result, as `prune.unstructured` does: "dense" kernels over the stored
            zeros (no speed-up expected) or "csr" sparse-matmul layers.
    """

    execution_fields = ("execution",)
    trains = True
    presentation = Presentation(
        short="IMP", family="iterative", headline=("rounds",),
        formats={"rate": percent, "rounds": template("x{}"), "rewind": template("rewind {}"),
                 "rewind_step": template("@{}")},
    )  # fmt: skip

    rate: float = 0.5
    rounds: int = 3
    rewind: str = "init"
    rewind_step: int = 0
    scope: str = "global"
    execution: str = "dense"

    def __post_init__(self) -> None:
        if isinstance(self.rate, bool) or not isinstance(self.rate, int | float):
            raise ValueError(f"rate must be a number in (0, 1), got {self.rate!r}")
        # `not 0 < rate < 1` also turns NaN away.
        if not 0.0 < self.rate < 1.0:
            raise ValueError(
                f"rate must be in (0, 1) (the share of surviving weights pruned per round), got {self.rate!r}"
            )
        # object.__setattr__ is the documented way to normalize fields of a frozen dataclass.
        object.__setattr__(self, "rate", float(self.rate))
        if not _is_int(self.rounds) or self.rounds < 1:
            raise ValueError(f"rounds must be an integer >= 1, got {self.rounds!r}")
        if not self.final_sparsity < 1.0:
            raise ValueError(
                f"rate={self.rate} over rounds={self.rounds} prunes every weight (1 - (1 - rate)^rounds is 1 in"
                " floating point); lower the rate or the rounds"
            )
        check_choice("rewind", self.rewind, REWINDS)
        if not _is_int(self.rewind_step) or self.rewind_step < 0:
            raise ValueError(f"rewind_step must be an integer >= 0, got {self.rewind_step!r}")
        if self.rewind != "early" and self.rewind_step != 0:
            raise ValueError(
                f"rewind_step is the step rewind=early rewinds to; rewind={self.rewind} takes none, got"
                f" rewind_step={self.rewind_step}"
            )
        check_choice("scope", self.scope, _SCOPES)
        check_choice("execution", self.execution, _EXECUTIONS)

    @property
    def final_sparsity(self) -> float:
        """The sparsity after the last round, 1 - (1 - rate)^rounds."""
        return self.sparsity_after(self.rounds)

    def sparsity_after(self, round_index: int) -> float:
        """The sparsity the mask has after round `round_index` (1-based): 1 - (1 - rate)^round_index."""
        return 1.0 - (1.0 - self.rate) ** round_index

    def round_steps(self, budget: int) -> list[int]:
        """The training steps of each round: `budget` split evenly, the remainder to the last round."""
        steps = [budget // self.rounds] * self.rounds
        steps[-1] += budget % self.rounds
        return steps

    def needs_initial_weights(self) -> bool:
        """Whether the rounds rewind to the reference's initial (or early) weights, which only models the suite
        trains have."""
        # reinit's masks come from rounds rewound to init; with one round there is none before the re-draw.
        return self.rewind in ("init", "early") or (self.rewind == "reinit" and self.rounds > 1)

    def check_training(self, facts: TrainingFacts) -> None:
        """Refuses a budget with a round of no steps, a rewind to weights that were not stored, and a rewind step
        the reference's training never reached."""
        if facts.steps < self.rounds:
            raise ValueError(
                f"{self.name} rounds={self.rounds} needs at least one training step per round, got a budget of"
                f" {facts.steps} (finetune_steps)"
            )
        if self.needs_initial_weights() and not facts.initial_weights:
            why = " (its masks come from rounds rewound to init)" if self.rewind == "reinit" else ""
            raise ValueError(
                f"{self.name} rewind={self.rewind} needs the model's initial weights{why}, {_INITIAL_WEIGHTS}"
                " (a model with the user's weights has none); rewind=none needs none"
            )
        if self.rewind == "early":
            if facts.reference_steps is None:
                raise ValueError(
                    f"{self.name} rewind=early needs the length of the reference's training, known only for models"
                    " the suite trains"
                )
            if self.rewind_step > facts.reference_steps:
                raise ValueError(
                    f"{self.name} rewind_step={self.rewind_step} is beyond the reference's training of"
                    f" {facts.reference_steps} steps: rewind=early can only rewind to a step it reached"
                    f" (0..{facts.reference_steps})"
                )

    def apply(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor] = ()
    ) -> Compressed:
        """The rounds' masks with no training between them, the method at a budget of zero steps.

        Magnitudes do not change between untrained rounds, so this is one-shot magnitude pruning of the reference to
        the final sparsity; there is nothing to rewind to, and the survivors keep their trained values. The suite
        calls `apply_trained`.
        """
        from compressors._iterative import prune_once

        return prune_once(self.name, model, self._sparsities(), self.scope)

    def apply_trained(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor], training: Training
    ) -> Compressed:
        """Prunes, rewinds and trains a copy of `model` for `rounds` rounds within `training.steps`.

        Returns:
            The pruned, trained copy, its final masks, and info with `sparsity_achieved`, `layer_sparsity`, the
            `per_round` figures (sparsity of the mask, steps trained, top-1 after the round's training) and
            `steps_trained`.

        Raises:
            ValueError: A rewind that needs weights `training` does not have (caught at config time by
                `check_training`, where the suite knows the facts).
        """
        from compressors._iterative import prune_trained

        start = self._start_state(training)
        return prune_trained(
            self.name, model, training, start, sparsities=self._sparsities(), steps=self.round_steps(training.steps),
            scope=self.scope, reinit=self.rewind == "reinit",
        )  # fmt: skip

    def finalize(self, model: nn.Module) -> Executable:
        """Executes the pruned model as `prune.unstructured` does with the same `execution`."""
        return UnstructuredPruning(execution=self.execution).finalize(model)

    def _sparsities(self) -> list[float]:
        """The sparsity of the mask after each round, in order."""
        return [self.sparsity_after(round_index) for round_index in range(1, self.rounds + 1)]

    def _start_state(self, training: Training) -> Mapping[str, torch.Tensor] | None:
        """The weights the survivors are rewound to between rounds, or None where they are not rewound."""
        if not self.needs_initial_weights():
            return None
        if training.initial_state is None or (self.rewind == "early" and training.rewound_state is None):
            raise ValueError(f"{self.name} rewind={self.rewind} needs the model's initial weights, {_INITIAL_WEIGHTS}")
        if self.rewind == "early":
            assert training.rewound_state is not None  # checked above, for mypy
            return training.rewound_state(self.rewind_step)
        return training.initial_state
