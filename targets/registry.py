"""Target names and how to build them."""

from __future__ import annotations

import difflib
from typing import Callable

from targets.base import Target
from targets.cpu import CpuTarget

__all__ = ["TARGETS", "UnknownTargetError", "create", "target_names"]

TARGETS: dict[str, Callable[..., Target]] = {
    "cpu": CpuTarget,
}
"""Factories by the name used in the config file, the CLI, the stored record and the report."""


class UnknownTargetError(KeyError):
    """A target name that is not registered; the message lists the valid ones."""

    def __str__(self) -> str:
        # KeyError would print the message quoted, as if it were the missing key itself.
        return str(self.args[0])


def target_names() -> list[str]:
    """Registered target names, sorted."""
    return sorted(TARGETS)


def create(name: str) -> Target:
    """Build the target registered as ``name``.

    Args:
        name: A registered target name, e.g. ``"cpu"``.

    Returns:
        A new target; its worker starts on the first request.

    Raises:
        UnknownTargetError: If ``name`` is not registered, with a close-match suggestion.
    """
    try:
        factory = TARGETS[name]
    except KeyError:
        valid = target_names()
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ";"
        raise UnknownTargetError(f"unknown target {name!r}{hint} valid: {', '.join(valid)}") from None
    return factory()
