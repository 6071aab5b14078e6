"""`[recovery]` of a matrix: the methods, their settings and the seeds, checked once against the table of methods."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench.errors import require
from bench.recovery.methods import METHOD_PARAMS, RECOVERY_METHODS

__all__ = ["MAX_SEED", "RecoveryConfig"]

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
