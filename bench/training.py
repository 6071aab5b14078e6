"""Training the suite's reference models, and fine-tuning compressed ones to recover accuracy.

A reference model is trained once, seeded, and cached under a digest of (model, data, recipe, torch version):
a second run, or a run of another compressor, reuses the same weights, so every accuracy in a report refers to
the same baseline.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from bench.data import Dataset, Split
from bench.errors import BenchError
from bench.models import ModelSpec, TrainRecipe

__all__ = ["train", "finetune", "Distillation", "distillation_loss", "trained_reference", "reference_cache_path"]


def _batches(split: Split, batch_size: int, generator: torch.Generator):
    order = torch.randperm(len(split), generator=generator)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        yield split.x[index], split.y[index]


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


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

    def step(self, model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
        with torch.no_grad():
            teacher_logits = self.teacher(x)
        optimizer.zero_grad(set_to_none=True)
        distillation_loss(model(x), teacher_logits, y, self.temperature, self.alpha).backward()
        optimizer.step()


def train(model: nn.Module, split: Split, recipe: TrainRecipe) -> nn.Module:
    """Train `model` in place with Adam for `recipe.epochs` epochs; returns it in eval mode."""
    generator = torch.Generator().manual_seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    model.train()
    for _ in range(recipe.epochs):
        for x, y in _batches(split, recipe.batch_size, generator):
            _step(model, optimizer, x, y)
    return model.eval()


def finetune(
    model: nn.Module,
    split: Split,
    steps: int,
    masks: dict[str, torch.Tensor],
    distillation: Distillation | None = None,
    batch_size: int = 64,
    lr: float = 5e-4,
    seed: int = 0,
) -> nn.Module:
    """Fine-tune a compressed model in place for `steps` mini-batches, keeping pruned weights at zero.

    Args:
        masks: parameter name -> bool tensor of kept entries; reapplied after every step, because an optimizer
            step would otherwise regrow the pruned weights and the model would no longer be sparse.
        distillation: learn from a teacher's soft labels as well as the hard ones; None for plain fine-tuning.
    """
    if distillation is not None:
        distillation.teacher.eval()
    step = distillation.step if distillation is not None else _step
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    params = dict(model.named_parameters())
    unknown = sorted(set(masks) - set(params))
    if unknown:
        raise ValueError(f"masks name parameters the model does not have: {', '.join(unknown)}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    done = 0
    while done < steps:
        for x, y in _batches(split, batch_size, generator):
            step(model, optimizer, x, y)
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


def trained_reference(spec: ModelSpec, dataset: Dataset, cache_dir: Path) -> nn.Module:
    """The trained reference model, from the cache or trained now (and cached) on the training split."""
    if spec.recipe is None:
        raise ValueError(f"model '{spec.name}' has no training recipe")
    path = reference_cache_path(spec, dataset, cache_dir)
    model = spec.build()
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    train(model, dataset.train, spec.recipe)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        torch.save(model.state_dict(), partial)
        partial.replace(path)  # atomic: an interrupted save never leaves a truncated cache entry
    except OSError as error:
        raise BenchError(f"cannot write the model cache {path}: {error.strerror}") from error
    return model
