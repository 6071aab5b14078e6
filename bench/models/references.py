"""The uncompressed reference of each model, built (or trained) once per process and shared by its cells.

A reference is the model, its data and its accuracy; what the run measures of it beside its candidates (size, MACs,
each engine's baseline artifact) is measured by the run's preparation (`bench.run.prepare`), with the same calls.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.measure.accuracy import EvalSplit, top1
from bench.models.assets import ModelAssets
from bench.models.data import Split, load_dataset
from bench.models.registry import TrainRecipe, resolve_model
from bench.models.training import (
    initial_weights,
    recipe_steps,
    reference_cache_path,
    rewound_weights,
    trained_reference,
)
from bench.models.userdata import load_weights, open_folder

__all__ = ["Reference", "References", "NO_WEIGHTS", "NO_DATA"]

NO_WEIGHTS = "n/a (no weights)"
NO_DATA = "n/a (weights given, no --data)"


@dataclass
class Reference:
    """A reference model with the data its accuracy is measured on.

    Attributes:
        test: the held-out split, or None when there is no real accuracy to measure.
        train: the training split, for recovery; only for models the suite trains itself.
        accuracy: baseline top-1 on `test`, or None.
        accuracy_note: what the accuracy is measured on, or why it is n/a.
        initial_state: the weights the suite's training of the model started from; None for user weights.
        rewound_state: the weights after k steps of that training (replayed); None for user weights.
        reference_steps: mini-batches of that training; None for user weights.
        recipe: how the suite trains the model (recovery trains the same way); None for a model without one.
    """

    spec_input_shape: tuple[int, int, int]
    model: nn.Module
    test: EvalSplit | None
    train: Split | None
    accuracy: float | None
    accuracy_note: str
    initial_state: dict[str, torch.Tensor] | None = None
    rewound_state: Callable[[int], dict[str, torch.Tensor]] | None = None
    reference_steps: int | None = None
    recipe: TrainRecipe | None = None

    def calibration(self, batches: int = 8, batch_size: int = 32) -> list[torch.Tensor]:
        """Real input batches for compressors that observe activations: training images when the
        suite trains the model, else images of the user's folder, else nothing (the compressor decides)."""
        source: EvalSplit | None = self.train if self.train is not None else self.test
        if source is None:
            return []
        found = []
        for images, _labels in source.batches(batch_size):
            found.append(images)
            if len(found) == batches:
                break
        return found

    def example_input(self, batch: int, seed: int = 0) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return torch.randn((batch, *self.spec_input_shape), generator=generator)


@dataclass
class References:
    """Memo of references for one run."""

    cache_dir: Path
    assets: Mapping[str, ModelAssets] = field(default_factory=dict)
    notify: Callable[[str], None] = lambda _message: None
    _models: dict[str, Reference] = field(default_factory=dict)

    def get(self, name: str) -> Reference:
        if name not in self._models:
            self._models[name] = self._build(name)
        return self._models[name]

    def _build(self, name: str) -> Reference:
        spec = resolve_model(name)
        assets = self.assets.get(name, ModelAssets())
        bundled = load_dataset(spec.dataset) if spec.dataset is not None else None
        trained: dict[str, Any] = {}
        if assets.weights is not None:
            model = load_weights(spec.build(), assets.weights, name)
        elif bundled is not None:
            if not reference_cache_path(spec, bundled, self.cache_dir).exists():
                self.notify(f"training {name} on {bundled.name} once (cached in {self.cache_dir} for later runs)")
            model = trained_reference(spec, bundled, self.cache_dir)
            assert spec.recipe is not None  # a model with a bundled data set has a recipe
            trained = {
                "initial_state": initial_weights(spec, bundled, self.cache_dir),
                "rewound_state": functools.partial(rewound_weights, spec, bundled, self.cache_dir),
                "reference_steps": recipe_steps(spec.recipe, bundled.train),
            }
        else:
            return Reference(spec.input_shape, spec.build().eval(), None, None, None, NO_WEIGHTS)
        test: EvalSplit
        if assets.data is not None:
            test, train = open_folder(assets.data, spec.input_shape, name), None
            note = f"top-1 on {assets.data} ({len(test)} images)"
        elif bundled is not None:
            test, train = bundled.test, bundled.train
            note = f"top-1 on {bundled.name} test ({len(test)} images)"
        else:
            return Reference(spec.input_shape, model, None, None, None, NO_DATA)
        return Reference(spec.input_shape, model, test, train, top1(model, test), note, recipe=spec.recipe, **trained)
