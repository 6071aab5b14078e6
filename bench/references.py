"""The uncompressed reference of each model, built (or trained) once per process and shared by its cells."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from bench.artifacts import save_torchscript
from bench.data import Dataset, load_dataset
from bench.measure.accuracy import top1
from bench.measure.flops import macs_report
from bench.measure.size import size_report
from bench.models import ModelSpec, resolve_model
from bench.training import trained_reference

__all__ = ["Reference", "References"]

NO_WEIGHTS = "n/a (no weights)"


@dataclass
class Reference:
    """A reference model with its data set and baseline accuracy (None when it has no real weights)."""

    spec: ModelSpec
    model: nn.Module
    dataset: Dataset | None
    accuracy: float | None
    _size: dict[str, int] = field(default_factory=dict)
    _macs: dict[int, int] = field(default_factory=dict)

    def size(self) -> dict[str, int]:
        """`size_report` of the reference, computed once (gzip of a large state takes seconds)."""
        if not self._size:
            self._size.update(size_report(self.model))
        return self._size

    def macs_dense(self, batch: int) -> int:
        """Dense MACs of one forward pass on `batch` samples."""
        if batch not in self._macs:
            self._macs[batch] = macs_report(self.model, self.example_input(batch))["macs_dense"]
        return self._macs[batch]

    def example_input(self, batch: int, seed: int = 0) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return torch.randn((batch, *self.spec.input_shape), generator=generator)


@dataclass
class References:
    """Memo of references and of their TorchScript artifacts (one per batch size) for one run."""

    cache_dir: Path
    artifact_dir: Path
    _models: dict[str, Reference] = field(default_factory=dict)
    _artifacts: dict[tuple[str, int], Path] = field(default_factory=dict)

    def get(self, name: str) -> Reference:
        if name not in self._models:
            spec = resolve_model(name)
            if spec.dataset is None:
                self._models[name] = Reference(spec, spec.build().eval(), None, None)
            else:
                dataset = load_dataset(spec.dataset)
                model = trained_reference(spec, dataset, self.cache_dir)
                self._models[name] = Reference(spec, model, dataset, top1(model, dataset.test))
        return self._models[name]

    def artifact(self, name: str, batch: int) -> Path:
        """The baseline's TorchScript file for inputs of `batch` samples."""
        key = (name, batch)
        if key not in self._artifacts:
            reference = self.get(name)
            path = self.artifact_dir / f"{name}-b{batch}-baseline.pt"
            self._artifacts[key] = save_torchscript(reference.model, reference.example_input(batch), path)
        return self._artifacts[key]
