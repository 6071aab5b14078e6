"""What a PAIR may say, and its values when it says nothing: the one source of the timing protocol's defaults
and limits, which the host's ``TimingConfig`` takes too, so that a matrix and a bare pair mean the same."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from . import gemm_2_4
from .engines import DEFAULT_ENGINE, ENGINES

__all__ = [
    "DEVICES", "MAX_ROUNDS", "MAX_SECONDS", "PAIR_DEFAULTS", "PAIR_KINDS", "TIMING_DEFAULTS", "check_timing",
    "validate_pair",
]  # fmt: skip

MAX_SECONDS = 86400.0
"""A day: the longest time budget or warm-up of one pair; beyond it a value is a typo (an extra zero), not a wish."""
MAX_ROUNDS = 100_000
"""Interleaved timing rounds: with blocks of at least 10 ms, more outlasts any budget."""

TIMING_DEFAULTS: dict[str, Any] = {
    "warmup_s": 0.3,
    "block_min_s": 0.01,
    "budget_s": 6.0,
    "min_rounds": 6,
    "max_rounds": 400,
    "ci_rel": 0.02,
}
"""The latency protocol's knobs: warm-up per side, shortest timed block, time budget of the rounds, fewest and most
rounds, and the relative 95% CI half-width of the median speedup at which rounds stop early."""

PAIR_DEFAULTS: dict[str, Any] = {
    **TIMING_DEFAULTS,
    "seed": 0,
    "quantized_engine": None,
    "kind": "artifacts",
    "engine": DEFAULT_ENGINE,
}
"""Optional PAIR fields and their values when the host leaves them out."""

PAIR_KINDS: dict[str, tuple[str, ...]] = {
    "artifacts": ("baseline", "candidate", "input_shape"),
    "stream": ("baseline", "candidate", "inputs"),
    "gemm_2_4": ("gemm",),
}
"""What a PAIR of each kind must give besides ``id``."""

DEVICES = ("cpu", "cuda")
"""Where a ``time`` request runs its models."""

_SECONDS = ("warmup_s", "block_min_s", "budget_s")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_timing(values: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` with one line naming ``timing.<name>`` unless the six timing knobs are in range.

    Args:
        values: The keys of ``TIMING_DEFAULTS``, each present.
    """
    for name in _SECONDS:
        value = values[name]
        if not _is_number(value):
            raise ValueError(f"timing.{name} must be a number of seconds, got {value!r}")
        if not 0 < value <= MAX_SECONDS:  # nan fails too
            raise ValueError(f"timing.{name} must be in (0, {MAX_SECONDS:g}] seconds, got {value}")
    ci_rel = values["ci_rel"]
    if not _is_number(ci_rel) or not 0 < ci_rel <= 1:
        raise ValueError(f"timing.ci_rel must be in (0, 1], got {ci_rel!r}")
    min_rounds = values["min_rounds"]
    if not _is_integer(min_rounds) or min_rounds < 2:  # one round has no interval to stop on
        raise ValueError(f"timing.min_rounds must be an integer >= 2, got {min_rounds!r}")
    max_rounds = values["max_rounds"]
    if not _is_integer(max_rounds) or not min_rounds <= max_rounds <= MAX_ROUNDS:
        raise ValueError(
            f"timing.max_rounds must be in timing.min_rounds ({min_rounds})..{MAX_ROUNDS}, got {max_rounds!r}"
        )


def validate_pair(raw: Any, device: str) -> dict[str, Any]:
    """The PAIR with its defaults filled in, or one clear error before any timing starts.

    Raises:
        ValueError: A field is missing, unknown or out of range.
        FileNotFoundError: An artifact is not there.
        RuntimeError: This device cannot run the pair (no such engine installed, no GPU able to).
    """
    if not isinstance(raw, dict):
        raise ValueError(f"a pair must be a JSON object, got {type(raw).__name__}")
    kind = raw.get("kind", PAIR_DEFAULTS["kind"])
    if kind not in PAIR_KINDS:
        raise ValueError(f"pair kind must be one of {', '.join(PAIR_KINDS)}, got {kind!r}")
    required = ("id",) + PAIR_KINDS[kind]
    missing = [key for key in required if key not in raw]
    if missing:
        raise ValueError(f"pair is missing {', '.join(missing)}")
    unknown = sorted(set(raw) - set(required) - set(PAIR_DEFAULTS))
    if unknown:
        raise ValueError(f"pair {raw['id']!r} has unknown field(s) {', '.join(unknown)}")
    pair = dict(PAIR_DEFAULTS)
    pair.update(raw)
    try:
        check_timing(pair)
    except ValueError as error:
        raise ValueError(f"pair {pair['id']!r}: {error}") from None
    if not _is_integer(pair["seed"]):
        raise ValueError(f"pair {pair['id']!r}: seed must be an integer, got {pair['seed']!r}")
    if kind == "gemm_2_4":
        if pair["engine"] != DEFAULT_ENGINE:
            raise ValueError(f"engine applies to artifact pairs, not gemm_2_4, got {pair['engine']!r}")
        gemm_2_4.check(pair, device)
        return pair
    name = pair["engine"]
    if not isinstance(name, str) or name not in ENGINES:
        raise ValueError(f"pair {pair['id']!r}: engine must be one of {', '.join(sorted(ENGINES))}, got {name!r}")
    if kind == "artifacts":
        shape = pair["input_shape"]
        if not isinstance(shape, list) or not all(_is_integer(d) and d > 0 for d in shape):
            raise ValueError(f"input_shape must be a list of positive integers, got {shape!r}")
    ENGINES[name].check(pair, device)
    files = ("baseline", "candidate", "inputs") if kind == "stream" else ("baseline", "candidate")
    for key in files:
        if not isinstance(pair[key], str) or not os.path.isfile(pair[key]):
            raise FileNotFoundError(f"{key} {'file' if key == 'inputs' else 'artifact'} not found: {pair[key]}")
    return pair
