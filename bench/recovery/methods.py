"""How a compressed model spends its training budget: the recovery methods after compression, and the `Training`
lent to compressors that train as they compress.

A recovery method is a function of a `RecoveryJob` that trains the job's model in place and returns the facts a
record keeps of it (the steps it really trained, where it started from); `METHOD_PARAMS` names the settings of
`[recovery]` each method reads, and only those are part of a cell's identity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.config.checks import require
from bench.measure.accuracy import top1
from bench.models.data import Split
from bench.models.references import Reference
from bench.models.registry import TrainRecipe
from bench.models.training import Distillation, fit
from bench.recovery.distill_features import feature_distillation, relational_distillation
from bench.recovery.scratch import scratch_b, scratch_e
from compressors import Training, TrainLoss

__all__ = ["MAX_SEED", "METHOD_PARAMS", "RECOVERY_METHODS", "RecoveryConfig", "RecoveryJob", "lend_training", "recover"]


@dataclass(frozen=True)
class RecoveryJob:
    """One compressed model to recover, with everything a method may need.

    Attributes:
        model: The compressed model, trained in place.
        masks: Parameter name -> kept entries, reapplied after every step (pruned weights stay zero).
        teacher: The uncompressed reference, for methods that learn from it.
        train: The training split.
        steps: The cell's budget in mini-batches.
        seed: The cell's training seed.
        settings: The cell's recovery settings (`METHOD_PARAMS[method]` of them, and the method).
        reference_steps: Mini-batches of the reference's own training, or None when the suite did not train it.
        example_input: An input of the model's shape, for methods that count MACs or probe feature maps.
        recipe: The model's training recipe, for methods that train from scratch (which also need `reference_steps`:
            a recipe the suite did not train the reference by is no training to repeat); None without one.
    """

    model: nn.Module
    masks: Mapping[str, torch.Tensor]
    teacher: nn.Module
    train: Split
    steps: int
    seed: int
    settings: Mapping[str, Any]
    reference_steps: int | None
    example_input: torch.Tensor
    recipe: TrainRecipe | None = None

    def fit(self, loss: TrainLoss | None = None, **options: Any) -> None:
        """Train the job's model on its split for its budget, masks kept, with `loss` (cross-entropy if None)."""
        options.setdefault("steps", self.steps)
        options.setdefault("seed", self.seed)
        fit(self.model, self.train, masks=self.masks, loss=loss, **options)


def _finetune(job: RecoveryJob) -> dict[str, Any]:
    job.fit()
    return {}


def _distill(job: RecoveryJob) -> dict[str, Any]:
    job.fit(Distillation(job.teacher, temperature=job.settings["temperature"], alpha=job.settings["alpha"]))
    return {}


RECOVERY_METHODS: dict[str, Callable[[RecoveryJob], dict[str, Any]]] = {
    "finetune": _finetune,
    "distill": _distill,
    "feature": feature_distillation,
    "relational": relational_distillation,
    "scratch-e": scratch_e,
    "scratch-b": scratch_b,
}
"""Method name -> the function that recovers a job's model, returning the facts the record keeps of it."""

METHOD_PARAMS: dict[str, tuple[str, ...]] = {
    "finetune": (),
    "distill": ("temperature", "alpha"),
    "feature": ("hint_weight",),
    "relational": ("distance_weight", "angle_weight"),
    "scratch-e": (),
    "scratch-b": (),
}
"""Method name -> the `[recovery]` settings it reads, which identify its cells beside the method."""


MAX_SEED = 2**31 - 1
"""The largest training seed: torch seeds generators with 64 bits, but a seed is a label a person types."""


@dataclass(frozen=True)
class RecoveryConfig:
    """How a compressed model spends its `finetune_steps` mini-batches: one or more methods (an axis: plain
    fine-tuning, distillation from the uncompressed model, ...; see `bench.recovery.methods`), each with its
    settings, at one or more training seeds (an axis too: a study's error bars).

    `hint_weight` weighs FitNet's hint against the labels (`feature`); `distance_weight` and `angle_weight` weigh
    RKD's relations (`relational`): Park et al.'s 25 and 50, at which each relational term starts at about a
    third to half of the cross-entropy of a pruned mnist_cnn, and a hint weight of 1, at which the hint starts at
    about half of it; a hint weight of 10 swamps the labels of a 90%-pruned student (its 18 channels cannot
    reproduce the teacher's 64), while RKD's 4x larger or 5x smaller weights changed top-1 by less than the seed
    spread in 200 steps.
    """

    method: tuple[str, ...] = ("finetune",)
    temperature: float = 4.0
    alpha: float = 0.5
    hint_weight: float = 1.0
    distance_weight: float = 25.0
    angle_weight: float = 50.0
    seeds: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        accepted = ", ".join(RECOVERY_METHODS)
        require(bool(self.method), f"recovery.method must name at least one method ({accepted})")
        for method in self.method:
            require(method in RECOVERY_METHODS, f"recovery.method must be one of {accepted}; got {method!r}")
        require(
            0 < self.temperature < math.inf, f"recovery.temperature must be a finite number > 0, got {self.temperature}"
        )
        require(0 <= self.alpha <= 1, f"recovery.alpha must be in [0, 1], got {self.alpha}")
        require(
            0 < self.hint_weight < math.inf, f"recovery.hint_weight must be a finite number > 0, got {self.hint_weight}"
        )
        for name in ("distance_weight", "angle_weight"):
            value = getattr(self, name)
            require(0 <= value < math.inf, f"recovery.{name} must be a finite number >= 0, got {value}")
        require(
            self.distance_weight > 0 or self.angle_weight > 0,
            "recovery.distance_weight and recovery.angle_weight are both 0: relational would be plain fine-tuning",
        )
        require(bool(self.seeds), "recovery.seeds must list at least one seed, e.g. [0, 1, 2]")
        for seed in self.seeds:
            require(0 <= seed <= MAX_SEED, f"recovery.seeds must be integers in 0..{MAX_SEED}, got {seed}")
        require(len(set(self.seeds)) == len(self.seeds), f"recovery.seeds lists a seed twice: {list(self.seeds)}")

    def points(self) -> list[dict[str, Any]]:
        """Each recovery a cell can have, method by method and seed by seed: the method, its own settings, and
        the seed where it is not 0 (so a cell measured before seeds were an axis keeps its id)."""
        return [
            {"method": method, **{name: getattr(self, name) for name in METHOD_PARAMS[method]}, **_seed(seed)}
            for method in self.method
            for seed in self.seeds
        ]

    def seed_points(self) -> list[dict[str, Any]]:
        """Each seed, for compressors that train as they compress: no recovery method applies to them."""
        return [_seed(seed) for seed in self.seeds]

    def to_json(self) -> dict[str, Any]:
        """The settings as a matrix file spells them."""
        params = dict.fromkeys(name for names in METHOD_PARAMS.values() for name in names)
        return {"method": list(self.method), **{name: getattr(self, name) for name in params},
                "seeds": list(self.seeds)}  # fmt: skip


def _seed(seed: int) -> dict[str, int]:
    return {"seed": seed} if seed else {}


def recover(job: RecoveryJob) -> dict[str, Any]:
    """Run the job's method; the facts it returns, with the method named."""
    method = str(job.settings.get("method", "finetune"))
    return {"method": method, **RECOVERY_METHODS[method](job)}


def lend_training(reference: Reference, steps: int, cell_seed: int) -> Training:
    """The `Training` a compressor that trains gets for one cell: the suite's loop over the reference's training
    split, its held-out top-1, and the reference's initial and rewound weights where the suite trained it.

    Raises:
        ValueError: The reference has no training split.
    """
    if reference.train is None:
        raise ValueError("the model has no training split")
    split = reference.train
    test = reference.test

    def train_for(
        model: nn.Module,
        steps: int,
        *,
        masks: Mapping[str, torch.Tensor] | None = None,
        loss: TrainLoss | None = None,
        seed: int | None = None,
    ) -> None:
        fit(model, split, steps, masks=masks, loss=loss, seed=cell_seed if seed is None else seed)

    def evaluate(model: nn.Module) -> float:
        assert test is not None  # a model the suite trains has its held-out split
        return top1(model, test)

    return Training(
        steps=steps,
        seed=cell_seed,
        fit=train_for,
        evaluate=evaluate,
        initial_state=reference.initial_state,
        rewound_state=reference.rewound_state,
        reference_steps=reference.reference_steps,
    )
