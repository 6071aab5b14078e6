"""The one user-facing error type.

`python -m bench` catches `BenchError`, prints its message on one line and exits with status 2, so every
validation at the boundary raises it with the field, the bad value and what is accepted.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["BenchError", "require", "unknown_name", "one_line"]


class BenchError(Exception):
    """A problem with the user's input or environment, reported as one line without a traceback.

    The message is one line by construction: a user's value echoed in it (a flag holding a newline, a file name
    with a control character) is escaped as Python escapes it in a repr, so it cannot break the line.
    """

    def __init__(self, message: str) -> None:
        super().__init__("".join(c if c.isprintable() else repr(c)[1:-1] for c in message))


def require(condition: bool, message: str) -> None:
    """Raise `BenchError(message)` unless `condition` holds: the check every config type runs in `__post_init__`."""
    if not condition:
        raise BenchError(message)


def unknown_name(kind: str, name: str, valid: Iterable[str], also: str = "") -> BenchError:
    """Build the error for a name missing from a registry, with the closest valid name as a hint.

    Args:
        kind: what was looked up ("model", "compressor", "target").
        name: the name the user gave.
        valid: every accepted name.
        also: a description of accepted names that cannot be listed, appended to the list.
    """
    options = sorted(valid)
    close = difflib.get_close_matches(name, options, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    accepted = ", ".join(options + ([also] if also else []))
    return BenchError(f"unknown {kind} '{name}'{hint} (valid: {accepted})")


def one_line(error: BaseException) -> str:
    """`Type: first line of the message`: what a failed cell or a skip reason says of an exception whose later
    lines (a traceback, an exporter's graph dump) belong in the details."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".strip()
