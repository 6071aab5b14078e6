"""Name -> compressor config class, the one registry that config files, the CLI and records share."""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable

from compressors.base import CompressorConfig

__all__ = ["UnknownCompressorError", "get", "names", "register"]

_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?")
_REGISTRY: dict[str, type[CompressorConfig]] = {}


class UnknownCompressorError(KeyError):
    """Raised by `get` for a name that is not registered; the message lists the valid names."""

    def __str__(self) -> str:
        # KeyError's own __str__ repr-quotes the message, which would garble the one-line user error.
        return str(self.args[0])


def register(name: str) -> Callable[[type[CompressorConfig]], type[CompressorConfig]]:
    """Class decorator that registers a compressor config under `name` and sets `cls.name`.

    Args:
        name: `family.variant` (or a bare `family`), lowercase, e.g. `prune.unstructured`. The same string is
            used in config files, records, tables and plot legends.

    Returns:
        The decorator, which returns the class unchanged apart from `name`.

    Raises:
        ValueError: If the name is malformed or already registered, since a silent overwrite would make the
            same string mean two compressors.
        TypeError: If the decorated class is not a `CompressorConfig`.
        ValueError: If its `presentation` names a parameter the config does not have: a typo there would silently
            leave the parameter out of every label.
    """
    if not _NAME_PATTERN.fullmatch(name):
        raise ValueError(f"compressor name must be lowercase 'family.variant', got {name!r}")

    def decorator(cls: type[CompressorConfig]) -> type[CompressorConfig]:
        if not (isinstance(cls, type) and issubclass(cls, CompressorConfig)):
            raise TypeError(f"@register({name!r}) needs a CompressorConfig subclass, got {cls!r}")
        if name in _REGISTRY:
            existing = _REGISTRY[name]
            raise ValueError(
                f"compressor {name!r} is already registered by {existing.__module__}.{existing.__qualname__}"
            )
        _check_presentation(name, cls)
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def _check_presentation(name: str, cls: type[CompressorConfig]) -> None:
    fields = {field.name for field in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    unknown = sorted(cls.presentation.parameters() - fields)
    if unknown:
        raise ValueError(
            f"the presentation of {name!r} names {', '.join(map(repr, unknown))}, not a parameter of"
            f" {cls.__qualname__}; its parameters: {', '.join(sorted(fields)) or '(none)'}"
        )


def get(name: str) -> type[CompressorConfig]:
    """Returns the config class registered under `name`.

    Raises:
        UnknownCompressorError: If no compressor has that name; the message suggests the closest one.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        valid = names()
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ";"
        raise UnknownCompressorError(f"unknown compressor {name!r}{hint} valid: {', '.join(valid)}") from None


def names() -> list[str]:
    """Returns every registered compressor name, sorted."""
    return sorted(_REGISTRY)
