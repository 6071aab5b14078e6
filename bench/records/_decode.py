"""Build a frozen dataclass from JSON, checking every field against its annotation.

A record read back from the store may come from a crash, a hand edit or a disk fault. Checking the JSON
against the dataclass's own annotations turns any such row into one `RecordError` that names the field,
instead of a `KeyError` or a wrong number three modules later.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar, Union

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["RecordError", "decode", "encode"]

T = TypeVar("T", bound="DataclassInstance")


class RecordError(ValueError):
    """A stored record that does not have the shape its schema version promises."""


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def decode(cls: type[T], data: Any, where: str) -> T:
    """`cls(**data)` with every field checked and nested dataclasses built from their JSON.

    Keys the dataclass does not know are ignored: a record keeps its meaning when a reader is older than a
    field that only adds detail. A missing field with a default takes the default.

    Raises:
        RecordError: a missing required field or a value of the wrong type, named with its path.
    """
    if not isinstance(data, Mapping):
        raise RecordError(f"{where}: expected an object, got {_kind(data)}")
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        if field.name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise RecordError(f"{where} lacks '{field.name}'")
            continue
        values[field.name] = _value(hints[field.name], data[field.name], f"{where}.{field.name}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise RecordError(f"{where}: {error}") from None


def _value(annotation: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        problems = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _value(option, value, where)
            except RecordError as error:
                problems.append(str(error))
        raise RecordError(problems[0] if problems else f"{where}: expected null, got {_kind(value)}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise RecordError(f"{where}: expected a list, got {_kind(value)}")
        (element, _ellipsis) = typing.get_args(annotation)
        return tuple(_value(element, item, f"{where}[{index}]") for index, item in enumerate(value))
    if origin in (dict, Mapping) or annotation in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise RecordError(f"{where}: expected an object, got {_kind(value)}")
        args = typing.get_args(annotation)
        if args and args[1] is not Any:
            return {key: _value(args[1], item, f"{where}.{key}") for key, item in value.items()}
        return dict(value)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return decode(annotation, value, where)
    return _scalar(annotation, value, where)


def _scalar(annotation: Any, value: Any, where: str) -> Any:
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        # JSON has one number type; infinity is a real value here (the theoretical speedup of 100% sparsity).
        if isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value):
            return float(value)
    elif annotation is str:
        if isinstance(value, str):
            return value
    else:
        raise TypeError(f"no decoder for {annotation!r} at {where}")
    return _fail(annotation, value, where)


def _fail(annotation: Any, value: Any, where: str) -> Any:
    raise RecordError(
        f"{where}: expected {getattr(annotation, '__name__', annotation)}, got {_kind(value)} {value!r:.40}"
    )


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def encode(value: Any) -> Any:
    """The JSON form of a record or of any of its parts: dataclasses as objects, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
    if isinstance(value, tuple | list):
        return [encode(item) for item in value]
    if isinstance(value, Mapping):
        return {key: encode(item) for key, item in value.items()}
    return value
