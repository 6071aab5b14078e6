"""The inference engines an artifacts pair can name in its ``engine`` field, and the one interface they share.

Every engine is a module with the functions of ``Engine``; ``ENGINES`` maps the pair's ``engine`` name to it.
Adding an engine is one module and one entry here: validation, timing and ``info`` go through the table only.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from ..operands import Operands
from . import onnxruntime, torchscript

__all__ = ["DEFAULT_ENGINE", "ENGINES", "Engine"]


class Engine(Protocol):
    """What an engine module provides (modules match a protocol by their functions)."""

    def info(self) -> dict[str, Any]:
        """Facts for the ``info`` answer (versions, providers); never fails where the engine is not installed."""

    def check(self, pair: dict[str, Any], device: str) -> None:
        """Raise one clear line unless this device can run ``pair``: called for every pair before any is timed."""

    def operands(self, pair: dict[str, Any], device: str, threads: int) -> AbstractContextManager[Operands]:
        """Baseline and candidate loaded as callables, the input (``inputs.pair_inputs``: seeded with
        ``pair["seed"]``, or a ``stream`` pair's list of real inputs) and the result's ``engine`` facts; whatever
        process-wide state loading changes is restored when the context exits."""


DEFAULT_ENGINE = "torchscript"
"""What a pair without an ``engine`` field runs on."""

ENGINES: dict[str, Engine] = {"torchscript": torchscript, "onnxruntime": onnxruntime}
