"""Inference engines, host side: each exports a model to the artifact its worker engine loads on the device.

Adding an engine is one module here (an `Engine`) and one entry in `ENGINES`, with its twin in
`targets.worker.engines` that loads and runs the artifact.
"""

from __future__ import annotations

from bench.engines.base import Engine, EngineLimit, Exported, Source
from bench.engines.ort import OnnxRuntime
from bench.engines.torchscript import TorchScript
from bench.errors import BenchError, unknown_name
from bench.records import DEFAULT_ENGINE

__all__ = ["ENGINES", "DEFAULT_ENGINE", "Engine", "EngineLimit", "Exported", "Source", "get", "check_engines"]

ENGINES: dict[str, Engine] = {engine.name: engine for engine in (TorchScript(), OnnxRuntime())}
"""Every engine a matrix may name, by name; the default one first."""


def get(name: str) -> Engine:
    """The engine called `name` (a name `check_engines` accepted)."""
    return ENGINES[name]


def check_engines(names: tuple[str, ...]) -> None:
    """Raise a one-line `BenchError` for an unknown engine or one this host cannot export for (not installed)."""
    for name in names:
        if name not in ENGINES:
            raise unknown_name("engine", name, ENGINES)
        missing = ENGINES[name].unavailable()
        if missing is not None:
            raise BenchError(f"--engines: {missing}")
