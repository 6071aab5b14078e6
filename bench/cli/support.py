"""What every verb of the command line shares: the parser that turns argparse errors into one line and builds a
verb's flags only when that verb runs, the store and `--wide` flags, warnings for unreadable stored rows, writing a
verb's output to a file or stdout, and the one-thread torch the in-process work runs with.

Nothing here imports torch: every verb module imports this one, and the read-only verbs stay light.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, Protocol, TypeAlias

from bench.errors import BenchError
from bench.store.database import DEFAULT_STORE, Store

__all__ = [
    "Parser", "Verbs", "Verb", "store_flag", "wide_flag", "readable", "writable_folder", "write_output", "host_torch",
]  # fmt: skip


class Parser(argparse.ArgumentParser):
    """argparse's parser, with an error as one line (a `BenchError`) and its arguments added on first use.

    `arguments`, when given, adds the parser's arguments the first time it parses or formats its help. A verb's
    flags may name what only a heavy module knows (the recovery methods need torch): built eagerly for every verb,
    they would make `python -m bench list runs` import what it never uses.
    """

    def __init__(self, *args: Any, arguments: Callable[[Parser], None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._arguments = arguments

    def _complete(self) -> None:
        arguments, self._arguments = self._arguments, None
        if arguments is not None:
            arguments(self)

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        self._complete()
        return super().parse_known_args(*args, **kwargs)

    def format_usage(self) -> str:
        self._complete()
        return super().format_usage()

    def format_help(self) -> str:
        self._complete()
        return super().format_help()

    def error(self, message: str) -> NoReturn:
        raise BenchError(message)


Verbs: TypeAlias = "argparse._SubParsersAction[Parser]"
"""The command line's subparsers, to which each verb module adds its own (`verbs.add_parser(NAME, arguments=...)`)."""


class Verb(Protocol):
    """A verb module: it adds its parser, whose `handler` default does the verb's work and returns the exit status."""

    def register(self, verbs: Verbs) -> None: ...


def store_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", type=Path, default=DEFAULT_STORE, help=f"SQLite result store (default: {DEFAULT_STORE})"
    )


def wide_flag(parser: argparse.ArgumentParser) -> None:
    """`--wide`, shared by `run`, `study` and `report`."""
    parser.add_argument(
        "--wide", action="store_true",
        help="print every column of every table (wider than a screen) instead of the 120-column summary",
    )  # fmt: skip


def readable(store: Store, items: list[Any]) -> list[Any]:
    """`items` read from `store`, after a warning line for each stored row that could not be read."""
    for note in store.unreadable:
        print(f"warning: {store.path}: {note}", file=sys.stderr)
    store.unreadable.clear()
    return items


def writable_folder(directory: Path) -> bool:
    """Whether `directory` exists as a writable folder or can be made in the nearest existing one."""
    existing = next((p for p in [directory, *directory.parents] if p.exists()), None)
    return existing is not None and existing.is_dir() and os.access(existing, os.W_OK)


def write_output(text: str, path: Path | None, flag: str) -> None:
    """`text` to the file `path` names, or to stdout when it is None; an unwritable file is the user's error."""
    if path is None:
        sys.stdout.write(text)
        return
    try:
        path.write_text(text)
    except OSError as error:
        raise BenchError(f"{flag}: cannot write {path}: {error.strerror}") from None


def host_torch() -> None:
    """Set torch up for the work a verb does in this process (training, compression, accuracy): one thread.

    On a shared machine, oversubscribed OpenMP threads slow that work down tenfold. Timed work runs in the worker,
    at the threads each cell asks for. Called by the verbs that need torch, so the others never import it.
    """
    import torch

    torch.set_num_threads(1)
