"""What the run measures of each reference beside its candidates (`Baselines`), made once per host process, and the
memo of pieces made once (`Made`) that the baselines and each group's preparation (`bench.run.prepare`) keep.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import torch

from bench.engines import Engine
from bench.measure.flops import macs_report
from bench.measure.size import size_report
from bench.models.references import Reference, References
from bench.run.exit_facts import stream_file

__all__ = ["Baselines", "Made"]

_T = TypeVar("_T")


class Made:
    """Pieces made once, by key. A failure is made once too: kept with its traceback and raised again to every cell
    that needs the piece, in the order a cell preparing alone would meet it, so it fails or skips only those cells."""

    def __init__(self) -> None:
        self.values: dict[tuple[Any, ...], Any] = {}
        self._failed: dict[tuple[Any, ...], tuple[Exception, TracebackType | None]] = {}

    def get(self, key: tuple[Any, ...], make: Callable[[], _T]) -> _T:
        if key in self._failed:
            error, trace = self._failed[key]
            raise error.with_traceback(trace)
        if key not in self.values:
            try:
                self.values[key] = make()
            except Exception as error:
                self._failed[key] = (error, error.__traceback__)
                raise
        return self.values[key]

    def clear(self) -> None:
        self.values.clear()
        self._failed.clear()


class Baselines:
    """The run's references and what is measured of each beside its candidates, made once per run (a failure too):
    its size, its dense MACs per batch, its calibration batches and its artifact per engine (and per batch where the
    engine needs it), which every cell of the model times its candidate against."""

    def __init__(self, references: References, directory: Path) -> None:
        """Start empty; `directory` holds the baselines' artifacts and the early-exit streams for the run."""
        self.directory = directory
        self._references = references
        self._made = Made()

    def reference(self, name: str) -> Reference:
        """The reference of model `name` (raises what building it raised)."""
        return self._made.get(("reference", name), functools.partial(self._references.get, name))

    def size(self, name: str) -> dict[str, int]:
        """`size_report` of the reference (gzip of a large state takes seconds)."""
        return self._made.get(("size", name), lambda: size_report(self.reference(name).model))

    def macs_dense(self, name: str, batch: int) -> int:
        """Dense MACs of one forward pass of the reference on `batch` samples."""
        reference = self.reference(name)
        example = functools.partial(reference.example_input, batch)
        return self._made.get(("macs", name, batch), lambda: macs_report(reference.model, example())["macs_dense"])

    def calibration(self, name: str) -> list[torch.Tensor]:
        """The reference's calibration batches, read once for every compressor that observes activations."""
        return self._made.get(("calibration", name), self.reference(name).calibration)

    def artifact(self, name: str, batch: int, engine: Engine) -> Path:
        """The baseline's artifact for `engine`, for inputs of `batch` samples."""
        reference = self.reference(name)
        path = self.directory / f"{name}-b{batch}-baseline.{engine.suffix}"
        key = ("artifact", name, engine.name, batch if engine.batch_specific else None)
        return self._made.get(key, lambda: engine.baseline(reference.model, reference.example_input(batch), path))

    def stream(self, name: str) -> Path:
        """The stream of real test inputs an early exit and its baseline are timed on."""
        test = self.reference(name).test
        assert test is not None, "a compressor whose work depends on the input has the model's data"
        return self._made.get(("stream", name), functools.partial(stream_file, name, test, self.directory))
