"""Training the suite's reference models, and fine-tuning compressed ones to recover accuracy.

A reference model is trained once, seeded, and cached under a digest of (model, data, recipe, torch version):
a second run, or a run of another compressor, reuses the same weights, so every accuracy in a report refers to
the same baseline.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from bench.errors import BenchError
from bench.models.data import Dataset, Split
from bench.models.registry import ModelSpec, TrainRecipe
from compressors import TrainLoss

__all__ = [
    "Distillation", "cross_entropy", "distillation_loss", "fit", "initial_state_path", "initial_weights",
    "recipe_steps", "reference_cache_path", "rewound_weights", "train", "trained_reference",
]  # fmt: skip


def _batches(split: Split, batch_size: int, generator: torch.Generator):
    order = torch.randperm(len(split), generator=generator)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        yield split.x[index], split.y[index]


def cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The plain training loss: cross-entropy of the model's logits against the labels."""
    return nn.functional.cross_entropy(model(x), y)


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float, alpha: float
) -> torch.Tensor:
    """Hinton et al.'s knowledge-distillation loss.

    `alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * cross_entropy(student, labels)`;
    the T^2 keeps the soft term's gradients on the scale of the hard term's as T grows.
    """
    soft = nn.functional.kl_div(
        nn.functional.log_softmax(student_logits / temperature, dim=1),
        nn.functional.log_softmax(teacher_logits / temperature, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    hard = nn.functional.cross_entropy(student_logits, labels)
    return alpha * temperature**2 * soft + (1 - alpha) * hard


@dataclass(frozen=True)
class Distillation:
    """Recovery from the uncompressed model's soft labels: the teacher, temperature T and soft-term weight."""

    teacher: nn.Module
    temperature: float = 4.0
    alpha: float = 0.5

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mini-batch loss of `model` as the student."""
        self.teacher.eval()
        with torch.no_grad():
            teacher_logits = self.teacher(x)
        return distillation_loss(model(x), teacher_logits, y, self.temperature, self.alpha)


def train(model: nn.Module, split: Split, recipe: TrainRecipe, max_steps: int | None = None) -> nn.Module:
    """Train `model` in place with Adam for `recipe.epochs` epochs; returns it in eval mode.

    Args:
        max_steps: Stop after this many mini-batches: the same trajectory cut short, so the weights after k steps
            of a reference's training can be replayed from its initial weights (late rewinding).
    """
    generator = torch.Generator().manual_seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    model.train()
    done = 0
    for _ in range(recipe.epochs):
        for x, y in _batches(split, recipe.batch_size, generator):
            if done == max_steps:
                return model.eval()
            optimizer.zero_grad(set_to_none=True)
            cross_entropy(model, x, y).backward()
            optimizer.step()
            done += 1
    return model.eval()


def recipe_steps(recipe: TrainRecipe, split: Split) -> int:
    """Mini-batches of a whole training by `recipe` on `split`."""
    return recipe.epochs * math.ceil(len(split) / recipe.batch_size)


def fit(
    model: nn.Module,
    split: Split,
    steps: int,
    *,
    masks: Mapping[str, torch.Tensor] | None = None,
    loss: TrainLoss | None = None,
    extra_parameters: Iterable[nn.Parameter] = (),
    batch_size: int = 64,
    lr: float = 5e-4,
    seed: int = 0,
) -> nn.Module:
    """Train a (compressed) model in place for `steps` mini-batches with Adam, keeping pruned weights at zero.

    Args:
        masks: parameter name -> bool tensor of kept entries; reapplied after every step, because an optimizer
            step would otherwise regrow the pruned weights and the model would no longer be sparse.
        loss: the mini-batch loss (`cross_entropy` when None): distillation, exit heads, several widths.
        extra_parameters: trained beside the model's own and not part of it (a distillation adapter).
        seed: seeds the data order and anything the loss draws.
    """
    masks = dict(masks or {})
    loss = loss or cross_entropy
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    params = dict(model.named_parameters())
    unknown = sorted(set(masks) - set(params))
    if unknown:
        raise ValueError(f"masks name parameters the model does not have: {', '.join(unknown)}")
    optimizer = torch.optim.Adam([*model.parameters(), *extra_parameters], lr=lr)
    model.train()
    done = 0
    while done < steps:
        for x, y in _batches(split, batch_size, generator):
            optimizer.zero_grad(set_to_none=True)
            loss(model, x, y).backward()
            optimizer.step()
            with torch.no_grad():
                for name, mask in masks.items():
                    params[name].masked_fill_(~mask, 0.0)
            done += 1
            if done == steps:
                break
    return model.eval()


def reference_cache_path(spec: ModelSpec, dataset: Dataset, cache_dir: Path) -> Path:
    """Where the trained weights of `spec` on `dataset` live: named by a digest of everything that shapes them."""
    assert spec.recipe is not None
    key = json.dumps(
        {"model": spec.name, "data": dataset.digest, "recipe": asdict(spec.recipe), "torch": torch.__version__},
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return cache_dir / f"{spec.name}-{digest}.pt"


def _save_atomic(state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Write a state dict so that an interrupted save never leaves a truncated cache entry."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        torch.save(dict(state), partial)
        partial.replace(path)
    except OSError as error:
        raise BenchError(f"cannot write the model cache {path}: {error.strerror}") from error


def initial_state_path(trained: Path) -> Path:
    """Where the weights a cached model started its training from live: beside the trained weights."""
    return trained.with_name(trained.stem + "-init.pt")


def trained_reference(spec: ModelSpec, dataset: Dataset, cache_dir: Path) -> nn.Module:
    """The trained reference model, from the cache or trained now (and cached) on the training split.

    Its initial weights are cached beside it: a lottery ticket rewinds to them, so the ticket is reproducible
    from the cache alone.
    """
    if spec.recipe is None:
        raise ValueError(f"model '{spec.name}' has no training recipe")
    path = reference_cache_path(spec, dataset, cache_dir)
    model = spec.build()
    initial = initial_state_path(path)
    if not initial.exists():
        # Builders are seeded, so a fresh build is the very start of the cached training (also for an entry
        # cached before initial weights were kept).
        _save_atomic(model.state_dict(), initial)
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    train(model, dataset.train, spec.recipe)
    _save_atomic(model.state_dict(), path)
    return model


def initial_weights(spec: ModelSpec, dataset: Dataset, cache_dir: Path) -> dict[str, torch.Tensor]:
    """The weights the cached reference of `spec` started its training from (stored by `trained_reference`)."""
    return torch.load(initial_state_path(reference_cache_path(spec, dataset, cache_dir)), weights_only=True)


def rewound_weights(spec: ModelSpec, dataset: Dataset, cache_dir: Path, steps: int) -> dict[str, torch.Tensor]:
    """The reference's weights after `steps` mini-batches of its own training, replayed from its initial weights
    with its recipe (seeded data order, Adam): the rewind point of late rewinding."""
    assert spec.recipe is not None
    model = spec.build()
    model.load_state_dict(initial_weights(spec, dataset, cache_dir))
    return {
        name: value.detach().clone()
        for name, value in train(model, dataset.train, spec.recipe, steps).state_dict().items()
    }
