"""Validators for config fields; each raises a one-line ValueError naming the field, the rule and the value."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import Any

__all__ = ["check_choice", "check_fraction", "parse_value"]


def check_fraction(field: str, value: object) -> float:
    """Checks that `value` is a number in [0, 1) and returns it as a float.

    The float conversion makes `0` and `0.0` the same config, so equal configs give equal JSON and cell ids.

    Raises:
        ValueError: If `value` is not a real number (bools included) or lies outside [0, 1).
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{field} must be a number in [0, 1), got {value!r}")
    # `value` on the left: numbers.Real promises only < and <=; `not value < 1.0` also turns NaN away.
    if value < 0.0 or not value < 1.0:
        raise ValueError(f"{field} must be in [0, 1), got {value!r}")
    return float(value)


def check_choice(field: str, value: object, choices: Sequence[str]) -> str:
    """Checks that `value` is one of `choices` and returns it.

    Raises:
        ValueError: If `value` is not one of `choices`.
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{field} must be one of {', '.join(choices)}; got {value!r}")
    return value


def parse_value(text: str) -> Any:
    """A parameter written as text (command line, chain stage): int, then float, then true/false, else the text."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)
