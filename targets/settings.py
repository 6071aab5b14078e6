"""A target's settings as the matrix TOML gives them (``[targets.NAME]``), checked field by field.

Each target kind declares its settings as a frozen dataclass; ``parse_settings`` turns the TOML table into one,
so a typo, a missing host or a string where a number belongs is caught when the config loads, in one line.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, TypeVar

__all__ = ["SettingsError", "ThermalPolicy", "parse_settings"]


class _Dataclass(Protocol):
    """A dataclass, as ``dataclasses.fields`` takes it: every kind's settings are one."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]


SettingsT = TypeVar("SettingsT", bound=_Dataclass)


class SettingsError(ValueError):
    """A target's settings are wrong; the message names the target, the key and what is accepted."""


@dataclasses.dataclass(frozen=True)
class ThermalPolicy:
    """How a target treats heat, for every kind: small boards throttle after seconds of full load.

    Attributes:
        cooldown_s: Longest wait before each cell (0: none). With ``cooldown_below_c`` the wait ends as soon as
            the device is that cool; without it, or on a device without a sensor, the wait is ``cooldown_s`` flat.
        cooldown_below_c: Temperature (degrees C) that ends a cool-down early.
        throttle_temp_c: A cell whose device was this hot, before or after, is flagged ``throttled``; so is one
            during which the firmware reported throttling (``vcgencmd get_throttled`` on a Raspberry Pi).
    """

    cooldown_s: float = 0.0
    cooldown_below_c: float | None = None
    throttle_temp_c: float = 80.0


def _accepts(annotation: Any, value: Any) -> bool:
    """Whether ``value`` from TOML fits the field's annotation (str, int, float, bool, tuple[str, ...], X | None)."""
    if isinstance(annotation, types.UnionType):
        return any(_accepts(option, value) for option in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if typing.get_origin(annotation) is tuple:
        (item, _) = typing.get_args(annotation)
        return isinstance(value, (list, tuple)) and all(_accepts(item, v) for v in value)
    if annotation is float:  # inf and nan parse as TOML floats, but no timeout or temperature is infinite
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, types.UnionType):  # "X | None": None is what leaving the key out means
        return " or ".join(_type_name(option) for option in typing.get_args(annotation) if option is not type(None))
    if typing.get_origin(annotation) is tuple:
        return f"a list of {_type_name(typing.get_args(annotation)[0])}"
    names = {str: "a string", int: "an integer", float: "a finite number", bool: "true or false"}
    return names.get(annotation, str(annotation))


def parse_settings(cls: type[SettingsT], table: Mapping[str, Any], where: str) -> SettingsT:
    """Build the settings dataclass ``cls`` from a TOML table.

    Args:
        cls: A frozen dataclass whose fields are the accepted keys; a field without a default is required.
        table: The keys given.
        where: Names the table in messages, e.g. ``"[targets.pi4]"``.

    Raises:
        SettingsError: An unknown key, a missing required key, or a value of the wrong type.
    """
    fields = {field.name: field for field in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise SettingsError(f"{where}: unknown key '{unknown[0]}' (accepted: {', '.join(sorted(fields))})")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        if name not in table:
            if required:
                raise SettingsError(f"{where}: '{name}' is required")
            continue
        value = table[name]
        if not _accepts(hints[name], value):
            raise SettingsError(f"{where}: '{name}' must be {_type_name(hints[name])}, got {value!r}")
        values[name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)
