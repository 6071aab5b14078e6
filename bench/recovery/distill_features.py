"""Distillation beyond logits: a student learns the teacher's intermediate features (FitNet, Romero et al. 2015) or
the relations between its samples' embeddings (RKD, Park et al. 2019), on top of the hard labels.

Where the features are is found generically, with forward pre-hooks, for teacher and student alike:

* the *feature map* of FitNet is the input of the model's first `nn.Flatten`, i.e. the last convolutional map,
  which is as deep as a hint can go while still being a map; a model with no `nn.Flatten` (torchvision's,
  which flatten in `forward`) gives the input of its last `nn.Linear` instead, the pooled features, read as a
  1x1 map;
* the *embedding* of RKD is the input of the model's last `nn.Linear`: the penultimate representation, the one
  a classifier separates linearly.

Both losses are `TrainLoss` functions, so the loop that fine-tunes (Adam, masks reapplied after every step) runs
them unchanged on the same budget as logits distillation and plain fine-tuning.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from bench.recovery.job import RecoveryJob
from compressors import TrainLoss

__all__ = [
    "Objective", "captured_input", "embedding_layer", "feature_distillation", "feature_layer", "feature_objective",
    "hint_loss", "relational_distillation", "relational_objective", "rkd_angle_loss", "rkd_distance_loss",
]  # fmt: skip


def feature_layer(model: nn.Module) -> nn.Module:
    """The module whose input is the FitNet feature map: the first `nn.Flatten`, else the last `nn.Linear`.

    Raises:
        ValueError: The model has neither.
    """
    flatten = next((module for module in model.modules() if isinstance(module, nn.Flatten)), None)
    return flatten if flatten is not None else embedding_layer(model)


def embedding_layer(model: nn.Module) -> nn.Linear:
    """The model's last `nn.Linear` (in `modules()` order), whose input is the embedding RKD relates.

    Raises:
        ValueError: The model has no `nn.Linear`.
    """
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer, whose input would be the embedding")
    return linears[-1]


class _Input:
    """The latest input of one module, kept by a forward pre-hook."""

    def __init__(self) -> None:
        self.value: torch.Tensor | None = None

    def keep(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self.value = args[0]

    def get(self) -> torch.Tensor:
        assert self.value is not None, "the hooked module did not run in the forward pass"
        return self.value


@contextmanager
def captured_input(module: nn.Module) -> Iterator[_Input]:
    """Keeps `module`'s input of each forward pass while the block runs; the hook is gone after it, so the model
    that is exported and timed carries none."""
    kept = _Input()
    handle = module.register_forward_pre_hook(kept.keep)
    try:
        yield kept
    finally:
        handle.remove()


def _as_map(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) as it is, (N, C) as (N, C, 1, 1), so one 1x1 conv adapts either."""
    if features.dim() == 2:
        return features[:, :, None, None]
    if features.dim() != 4:
        raise ValueError(f"a feature map must be (N, C, H, W) or (N, C), got shape {tuple(features.shape)}")
    return features


def hint_loss(adapted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """FitNet's hint term: mean squared error between the adapted student map and the teacher's."""
    if adapted.shape != target.shape:
        raise ValueError(f"hint: adapted student map {tuple(adapted.shape)} != teacher map {tuple(target.shape)}")
    return functional.mse_loss(adapted, target)


def _normalized_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Euclidean distances of every pair of distinct samples, divided by their mean: a relation that does not
    change when the embedding is scaled, so a student is not asked to match the teacher's magnitudes."""
    n = embeddings.shape[0]
    differences = embeddings.unsqueeze(0) - embeddings.unsqueeze(1)
    # The clamp keeps sqrt's gradient finite for coinciding samples; the diagonal (a sample and itself) is dropped.
    distances = differences.pow(2).sum(dim=2).clamp_min(1e-12).sqrt()
    pairs = distances[~torch.eye(n, dtype=torch.bool, device=embeddings.device)]
    return pairs / pairs.mean().clamp_min(1e-12)


def rkd_distance_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """RKD-D: Huber (smooth L1) distance between the students' and the teacher's mean-normalised pairwise distances.

    Args:
        student: (N, D_s) embeddings; N >= 2.
        teacher: (N, D_t) embeddings of the same samples; D_t may differ from D_s, since only relations are compared.
    """
    _check_batch(student, teacher, 2)
    return functional.smooth_l1_loss(_normalized_distances(student), _normalized_distances(teacher))


def _angles(embeddings: torch.Tensor) -> torch.Tensor:
    """Cosine of the angle at every anchor j between every other two samples i and k: (N, N, N)."""
    differences = embeddings.unsqueeze(0) - embeddings.unsqueeze(1)  # [j, i] = e_i - e_j
    unit = functional.normalize(differences, p=2, dim=2)
    return torch.bmm(unit, unit.transpose(1, 2))


def rkd_angle_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """RKD-A: Huber (smooth L1) distance between the cosines of the angles that triplets of samples form.

    Args:
        student: (N, D_s) embeddings; N >= 3.
        teacher: (N, D_t) embeddings of the same samples.
    """
    _check_batch(student, teacher, 3)
    return functional.smooth_l1_loss(_angles(student), _angles(teacher))


def _check_batch(student: torch.Tensor, teacher: torch.Tensor, least: int) -> None:
    if student.dim() != 2 or teacher.dim() != 2 or student.shape[0] != teacher.shape[0]:
        raise ValueError(
            f"RKD needs (N, D) embeddings of the same N samples, got {tuple(student.shape)} and {tuple(teacher.shape)}"
        )
    if student.shape[0] < least:
        raise ValueError(f"RKD needs at least {least} samples per batch, got {student.shape[0]}")


@torch.no_grad()
def _feature_map(model: nn.Module, example_input: torch.Tensor) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        with captured_input(feature_layer(model)) as features:
            model(example_input)
        return _as_map(features.get())
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class Objective:
    """What a recovery method trains with: its mini-batch loss, the parameters trained beside the model's own (the
    FitNet adapter, discarded after training) and the facts the record keeps of where the loss looks."""

    loss: TrainLoss
    extra_parameters: tuple[nn.Parameter, ...]
    facts: dict[str, Any]


def _where(model: nn.Module, layer: nn.Module) -> str:
    name = next(name for name, module in model.named_modules() if module is layer)
    return f"input of {type(layer).__name__} '{name}'"


def _forward_both(
    student: nn.Module, student_layer: nn.Module, teacher: nn.Module, teacher_layer: nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The student's logits, and the inputs of the student's and the teacher's matching layers on `x` (the
    teacher's without gradient: it is the target)."""
    teacher.eval()
    with torch.no_grad(), captured_input(teacher_layer) as target:
        teacher(x)
    with captured_input(student_layer) as features:
        logits = student(x)
    return logits, features.get(), target.get()


def feature_objective(
    student: nn.Module, teacher: nn.Module, example_input: torch.Tensor, hint_weight: float, seed: int
) -> Objective:
    """FitNet in one stage: `cross_entropy(student) + hint_weight * MSE(adapter(student map), teacher map)`.

    The adapter is a 1x1 conv from the student's channels at the feature map to the teacher's (a channel-pruned
    student has fewer), drawn with `seed`; it is trained with the student and discarded after, so the model that
    is measured is the compressed architecture alone.

    Raises:
        ValueError: The two feature maps differ in spatial size, which a 1x1 adapter cannot bridge.
    """
    student_map = _feature_map(student, example_input)
    teacher_map = _feature_map(teacher, example_input)
    if student_map.shape[2:] != teacher_map.shape[2:]:
        raise ValueError(
            f"feature distillation: the student's feature map is {tuple(student_map.shape[1:])} and the teacher's "
            f"{tuple(teacher_map.shape[1:])}; a 1x1 adapter needs the same spatial size"
        )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        adapter = nn.Conv2d(student_map.shape[1], teacher_map.shape[1], kernel_size=1)
    finally:
        torch.random.set_rng_state(generator_state)
    teacher_layer, student_layer = feature_layer(teacher), feature_layer(student)

    def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits, features, target = _forward_both(model, student_layer, teacher, teacher_layer, x)
        adapted = adapter(_as_map(features))
        return functional.cross_entropy(logits, y) + hint_weight * hint_loss(adapted, _as_map(target))

    facts = {"feature_map": _where(student, student_layer), "adapter": [student_map.shape[1], teacher_map.shape[1]]}
    return Objective(loss, tuple(adapter.parameters()), facts)


def relational_objective(
    student: nn.Module, teacher: nn.Module, distance_weight: float, angle_weight: float
) -> Objective:
    """RKD: `cross_entropy(student) + distance_weight * RKD-D + angle_weight * RKD-A` on the embeddings."""
    teacher_layer, student_layer = embedding_layer(teacher), embedding_layer(student)

    def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits, embedding, target = _forward_both(model, student_layer, teacher, teacher_layer, x)
        student_embedding, teacher_embedding = embedding.flatten(1), target.flatten(1)
        total = functional.cross_entropy(logits, y)
        if distance_weight:
            total = total + distance_weight * rkd_distance_loss(student_embedding, teacher_embedding)
        if angle_weight:
            total = total + angle_weight * rkd_angle_loss(student_embedding, teacher_embedding)
        return total

    return Objective(loss, (), {"embedding": _where(student, student_layer)})


def feature_distillation(job: RecoveryJob) -> dict[str, Any]:
    """The `feature` recovery method: FitNet's hint at the last conv map, beside the labels, on the job's budget."""
    objective = feature_objective(job.model, job.teacher, job.example_input, job.settings["hint_weight"], job.seed)
    job.fit(objective.loss, extra_parameters=objective.extra_parameters)
    return objective.facts


def relational_distillation(job: RecoveryJob) -> dict[str, Any]:
    """The `relational` recovery method: RKD's distance and angle relations, beside the labels, on the job's budget."""
    settings = job.settings
    objective = relational_objective(job.model, job.teacher, settings["distance_weight"], settings["angle_weight"])
    job.fit(objective.loss)
    return objective.facts
