"""The checks the config runs on a matrix: the shape of a TOML tree, finite numbers, and sane upper bounds.

A matrix file is checked for shape and types on its own, before it is merged with the defaults and the flags,
so a wrong file is an error even where a flag overrides the wrong value. Ranges and names are checked on the
merged table, once. Every check raises `BenchError` with the field, the value and what is accepted.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import targets
from bench.errors import BenchError, require
from targets.worker import MAX_ROUNDS, MAX_SECONDS

__all__ = [
    "MAX_BATCH", "MAX_FINETUNE_STEPS", "MAX_ROUNDS", "MAX_SECONDS", "MAX_THREADS", "TOP_LEVEL_KEYS",
    "as_list", "check_matrix_tree", "check_section_types", "check_threads_fit", "is_number", "names",
    "positive_ints", "read_matrix_file",
]  # fmt: skip

# Upper bounds of what a benchmark can mean; beyond them a value is a typo (an extra zero), not a wish.
# MAX_SECONDS (a day: the longest budget or warm-up, also of layers.budget_s) and MAX_ROUNDS are the worker's own.
MAX_BATCH = 4096
"""Inputs per timed call: more than any latency benchmark uses, and a 224x224 fp32 batch of it is 2.4 GB."""
MAX_FINETUNE_STEPS = 100_000
"""Recovery mini-batches per compressed model: 500 times the default, hours per cell on a CPU."""
MAX_THREADS = 1024
"""Intra-op threads; a target on this machine is held to its logical cores, a remote one when it is reached."""

TOP_LEVEL_KEYS = frozenset(
    {
        "models",
        "targets",
        "engines",
        "threads",
        "batch",
        "finetune_steps",
        "recovery",
        "compressors",
        "timing",
        "layers",
        "artifacts",
        "limits",
        "weights",
        "data",
    }
)
_SECTIONS = ("recovery", "timing", "layers", "artifacts", "limits")


def as_list(value: Any) -> list[Any]:
    """A scalar as a one-element list: TOML and flags accept `threads = 2` for `threads = [2]`."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def is_integer(value: Any) -> bool:
    """An int that is not a bool (TOML's `true` would otherwise count as 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a finite float: `inf` and `nan` parse as floats but measure nothing."""
    return is_integer(value) or (isinstance(value, float) and math.isfinite(value))


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, bool)) or is_number(value)


def names(name: str, values: Sequence[Any]) -> tuple[str, ...]:
    """Non-empty names, without repeats, in order."""
    require(len(values) > 0, f"{name} must not be empty")
    for value in values:
        require(isinstance(value, str) and value != "", f"{name} must be names, got {value!r}")
    return tuple(dict.fromkeys(values))


def positive_ints(name: str, values: Sequence[Any], limit: int) -> tuple[int, ...]:
    """A non-empty list of integers in [1, `limit`]."""
    require(len(values) > 0, f"{name} must not be empty")
    for value in values:
        require(is_integer(value) and 1 <= value <= limit, f"{name} must be integers in 1..{limit}, got {value!r}")
    return tuple(values)


def check_threads_fit(
    threads: Sequence[int], target_names: Sequence[str], specs: Mapping[str, targets.TargetSpec]
) -> None:
    """Refuse a thread count beyond the cores of a target on this machine, before any cell runs.

    A remote target's cores are known only once it is reached; its worker refuses such a cell then.
    """
    cores = os.cpu_count() or 1
    for name in target_names:
        if specs[name].kind not in targets.LOCAL_KINDS:
            continue
        for count in threads:
            require(
                count <= cores,
                f"threads: {count} is more than the {cores} logical cores of this machine (target '{name}');"
                f" accepted: 1..{cores}",
            )


def check_section_types(cls: type, name: str, table: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of a `[timing]`, `[layers]`, `[recovery]` or `[artifacts]` table, each of its dataclass field's type.

    Returns:
        The table with lists as tuples, ready for `cls(**values)`.
    """
    declared = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
    for key in table:
        if key not in declared:
            raise BenchError(f"unknown key '{name}.{key}' (accepted: {', '.join(sorted(declared))})")
    values = {key: tuple(v) if isinstance(v, list) else v for key, v in table.items()}
    for key, value in values.items():
        default = declared[key]
        if isinstance(default, tuple) and isinstance(default[0], str) and isinstance(value, str):
            value = values[key] = (value,)  # one name where a list of names is accepted: `method = "distill"`
        expected = type(default)
        if expected is float:
            ok = is_number(value)
        else:  # a bool is an int to Python, never to a matrix file
            ok = isinstance(value, expected) and (expected is bool or not isinstance(value, bool))
        _check_kind(ok, f"{name}.{key}", _KIND_NAMES[expected], value)
        if expected is tuple:
            element = type(default[0])
            for item in value:
                fits = is_number(item) if element is float else isinstance(item, element)
                _check_kind(fits, f"{name}.{key}", f"a list of {_PLURALS[element]}", item)
    return values


_KIND_NAMES = {float: "a number", int: "an integer", tuple: "a list", str: "a string", bool: "true or false"}
_PLURALS = {float: "numbers", int: "integers", str: "names"}


def _check_kind(ok: bool, field: str, kind: str, value: Any) -> None:
    if not ok:
        if any(isinstance(item, float) and not math.isfinite(item) for item in as_list(value)):
            raise BenchError(f"{field} must be finite: inf and nan are not accepted, got {value!r}")
        raise BenchError(f"{field} must be {kind}, got {value!r}")


def check_matrix_tree(table: Mapping[str, Any], source: Path | None, section_types: Mapping[str, type]) -> None:
    """Check the shape and the types of a matrix table, at every level, before anything reads it.

    Args:
        table: a parsed TOML file, or the command line's overrides in the same schema.
        source: the file, named in every message; None for the command line.
        section_types: the dataclass of each of `[recovery]`, `[timing]`, `[layers]`, whose fields type its keys.

    Raises:
        BenchError: an unknown key, or a value of the wrong shape or type, naming its dotted path.
    """
    where = f" (in {source})" if source is not None else ""
    for key, value in table.items():
        if key not in TOP_LEVEL_KEYS:
            raise BenchError(f"unknown key '{key}'{where} (accepted: {', '.join(sorted(TOP_LEVEL_KEYS))})")
        try:
            _check_top_level(key, value, section_types)
        except BenchError as error:
            raise BenchError(f"{error}{where}") from None


def _check_top_level(key: str, value: Any, section_types: Mapping[str, type]) -> None:
    if key in ("models", "engines") or (key == "targets" and not isinstance(value, Mapping)):
        items = as_list(value)
        _check_kind(all(isinstance(item, str) for item in items), key, "a name or a list of names", value)
    elif key == "targets":
        for name, settings in value.items():
            _check_kind(isinstance(settings, Mapping), f"targets.{name}", "a table of settings", settings)
    elif key in ("threads", "batch"):
        _check_kind(all(is_integer(item) for item in as_list(value)), key, "an integer or a list of integers", value)
    elif key == "finetune_steps":
        _check_kind(is_integer(value), key, "an integer", value)
    elif key in _SECTIONS:
        _check_kind(isinstance(value, Mapping), key, "a table", value)
        check_section_types(section_types[key], key, value)
    elif key == "compressors":
        _check_kind(isinstance(value, Mapping), key, "a table of NAME = { PARAMETER = VALUE or [VALUES] }", value)
        for name, grids in value.items():
            _check_grids(f"compressors.{name}", grids)
    else:  # weights, data
        _check_kind(isinstance(value, Mapping), key, 'a table of MODEL = "PATH"', value)
        for model, path in value.items():
            _check_kind(isinstance(path, (str, Path)) and str(path) != "", f"{key}.{model}", "a path", path)


def _check_grids(field: str, grids: Any) -> None:
    """A compressor's grid: a table of parameters, or an array of such tables (the compressor named twice)."""
    tables = grids if isinstance(grids, list) else [grids]
    for grid in tables:
        _check_kind(isinstance(grid, Mapping), field, "a table of parameters (or an array of tables)", grid)
        for key, values in grid.items():
            items = as_list(values)
            ok = len(items) > 0 and all(_is_scalar(item) for item in items)
            _check_kind(
                ok, f"{field}.{key}", "a value or a non-empty list of values (numbers, strings, true/false)", values
            )


_MAX_TOML_BYTES = 1 << 20
"""A matrix file is a few kilobytes; reading more is reading /dev/zero, a log or a data file by mistake."""


def read_matrix_file(path: Path) -> dict[str, Any]:
    """The table of a TOML matrix file, or one `BenchError` line for any file that is not one.

    Raises:
        BenchError: missing, a folder, a device or pipe, larger than a matrix file can be, not UTF-8, not TOML,
            nested beyond what the parser's recursion allows, or unreadable.
    """
    try:
        if path.exists() and not path.is_dir() and not path.is_file():  # a device or a pipe never ends
            raise BenchError(f"--config: {path} is not a regular file")
        with path.open("rb") as handle:
            content = handle.read(_MAX_TOML_BYTES + 1)
        if len(content) > _MAX_TOML_BYTES:
            raise BenchError(f"--config: {path} is larger than {_MAX_TOML_BYTES >> 20} MiB, not a matrix file")
        return tomllib.loads(content.decode("utf-8"))
    except FileNotFoundError:
        raise BenchError(f"--config: no such file: {path}") from None
    except IsADirectoryError:
        raise BenchError(f"--config: {path} is a folder, expected a TOML file") from None
    except tomllib.TOMLDecodeError as error:
        raise BenchError(f"--config: {path} is not valid TOML: {error}") from None
    except UnicodeDecodeError as error:
        raise BenchError(
            f"--config: {path} is not UTF-8 text, as TOML must be"
            f" (byte {error.object[error.start]:#04x} at offset {error.start})"
        ) from None
    except RecursionError:
        raise BenchError(f"--config: {path} nests arrays or tables too deeply to read") from None
    except OSError as error:
        raise BenchError(f"--config: cannot read {path}: {error.strerror}") from None
