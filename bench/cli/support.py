"""What every verb of the command line shares: the parser that turns argparse errors into one line, the store
flag, warnings for unreadable stored rows, and writing a verb's output to a file or stdout."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from bench.config.run_config import DEFAULT_STORE
from bench.errors import BenchError
from bench.store.database import Store

__all__ = ["Parser", "store_flag", "readable", "writable_folder", "write_output"]


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise BenchError(message)


def store_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", type=Path, default=DEFAULT_STORE, help=f"SQLite result store (default: {DEFAULT_STORE})"
    )


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
