"""What a pair times, whatever produced it: the shape every engine and pair kind hands to the timing loop."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

__all__ = ["Operands"]


class Operands(NamedTuple):
    """Baseline and candidate as callables of one input, that input, and facts the result reports about them."""

    baseline: Callable[[Any], Any]
    candidate: Callable[[Any], Any]
    x: Any
    facts: dict[str, Any]
