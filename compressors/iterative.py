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

import copy
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from compressors._checks import check_choice
from compressors._modules import reinitialize
from compressors.base import Compressed, CompressorConfig, Executable, Training, TrainingFacts
from compressors.registry import register
from compressors.unstructured import UnstructuredPruning, keep_masks, prunable_layers, sparsity_facts

__all__ = ["IterativePruning", "REWINDS"]

REWINDS = ("init", "early", "none", "reinit")
_SCOPES = ("global", "layer")
_EXECUTIONS = ("dense", "csr")
_INITIAL_WEIGHTS = "stored only for models the suite trains, beside the cached trained reference"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _draw_seed(seed: int, round_index: int) -> int:
    """The seed of the values `reinit` draws: one per cell seed and round, with no two pairs sharing one."""
    digest = hashlib.sha256(f"prune.iterative reinit {seed} {round_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


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

    def _needs_initial_weights(self) -> bool:
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
        if self._needs_initial_weights() and not facts.initial_weights:
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
        pruned, layers = self._copy_with_layers(model)
        keeps = [torch.ones_like(module.weight, dtype=torch.bool) for _, module in layers]
        for round_index in range(1, self.rounds + 1):
            keeps = self._prune_round(layers, keeps, round_index)
        _zero_pruned(layers, keeps)
        return Compressed(model=pruned, masks=_masks_by_name(layers, keeps), info=sparsity_facts(layers))

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
        pruned, layers = self._copy_with_layers(model)
        start = self._start_state(training)
        keeps = [torch.ones_like(module.weight, dtype=torch.bool) for _, module in layers]
        per_round: list[dict[str, Any]] = []
        for round_index, steps in enumerate(self.round_steps(training.steps), start=1):
            keeps = self._prune_round(layers, keeps, round_index)
            self._reset(pruned, start, training.seed, round_index)
            _zero_pruned(layers, keeps)
            training.fit(pruned, steps, masks=_masks_by_name(layers, keeps))
            kept = sum(int(keep.sum()) for keep in keeps)
            total = sum(keep.numel() for keep in keeps)
            per_round.append(
                {
                    "round": round_index,
                    "sparsity": 1.0 - kept / total,
                    "steps": steps,
                    "top1": training.evaluate(pruned),
                }
            )
        info: dict[str, Any] = {**sparsity_facts(layers), "per_round": per_round, "steps_trained": training.steps}
        if self.rewind == "reinit":
            info["reinit_seed"] = _draw_seed(training.seed, self.rounds)
        return Compressed(model=pruned, masks=_masks_by_name(layers, keeps), info=info)

    def finalize(self, model: nn.Module) -> Executable:
        """Executes the pruned model as `prune.unstructured` does with the same `execution`."""
        return UnstructuredPruning(execution=self.execution).finalize(model)

    def _copy_with_layers(self, model: nn.Module) -> tuple[nn.Module, list[tuple[str, nn.Conv2d | nn.Linear]]]:
        pruned = copy.deepcopy(model)
        layers = prunable_layers(pruned)
        if not layers:
            raise ValueError(f"{self.name} found no nn.Conv2d or nn.Linear layer to prune")
        return pruned, layers

    def _prune_round(
        self, layers: Sequence[tuple[str, nn.Conv2d | nn.Linear]], keeps: Sequence[torch.Tensor], round_index: int
    ) -> list[torch.Tensor]:
        """The mask after round `round_index`: the smallest surviving weights go until the round's sparsity.

        Pruned entries score -1, below every magnitude, so they stay pruned however training left them and the
        count of zeros is the round's exact target rather than a drift of per-round roundings.
        """
        scores = [
            torch.where(keep, module.weight.detach().abs(), -1.0)
            for (_, module), keep in zip(layers, keeps, strict=True)
        ]
        return keep_masks(scores, self.sparsity_after(round_index), self.scope)

    def _start_state(self, training: Training) -> Mapping[str, torch.Tensor] | None:
        """The weights the survivors are rewound to between rounds, or None where they are not rewound."""
        if not self._needs_initial_weights():
            return None
        if training.initial_state is None or (self.rewind == "early" and training.rewound_state is None):
            raise ValueError(f"{self.name} rewind={self.rewind} needs the model's initial weights, {_INITIAL_WEIGHTS}")
        if self.rewind == "early":
            assert training.rewound_state is not None  # checked above, for mypy
            return training.rewound_state(self.rewind_step)
        return training.initial_state

    def _reset(self, model: nn.Module, start: Mapping[str, torch.Tensor] | None, seed: int, round_index: int) -> None:
        """Resets every parameter (and buffer) of `model` as `rewind` says, before the round's mask is applied."""
        if self.rewind == "reinit" and round_index == self.rounds:
            reinitialize(model, _draw_seed(seed, round_index))
        elif start is not None:
            model.load_state_dict(dict(start))


def _zero_pruned(layers: Sequence[tuple[str, nn.Conv2d | nn.Linear]], keeps: Sequence[torch.Tensor]) -> None:
    with torch.no_grad():
        for (_, module), keep in zip(layers, keeps, strict=True):
            # masked_fill, not mul: a negative weight times 0 is -0.0, which CSR would not encode bit for bit.
            module.weight.masked_fill_(~keep, 0.0)


def _masks_by_name(
    layers: Sequence[tuple[str, nn.Conv2d | nn.Linear]], keeps: Sequence[torch.Tensor]
) -> dict[str, torch.Tensor]:
    return {f"{name}.weight" if name else "weight": keep for (name, _), keep in zip(layers, keeps, strict=True)}
