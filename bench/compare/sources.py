"""BASE and CAND of a comparison: a run id in the store, a store file (`PATH` or `PATH@RUN_ID`), or a JSON export.

Stores are opened with `read_store`, which creates and changes nothing, so a comparison never alters a result.
What each argument is, is decided by what exists: an existing file is a JSON export when it starts with `{`
(whatever its name) and a store otherwise (`read_store` refuses a file that is not one); a name that is no file
is a run id in `--store`, unless it looks like a path (a folder separator or a file suffix), which then is missing.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.records import Record, RecordError, load_record
from bench.store.database import Run, read_store

__all__ = ["Side", "resolve", "from_store", "from_export"]

_EXPORT = 'an export is the JSON object {"run": ..., "records": [...]} written by: python -m bench export --format json'
_PATH_SUFFIXES = (".json", ".sqlite", ".sqlite3", ".db")


@dataclass(frozen=True)
class Side:
    """One side of a comparison: the run and its records, and where they were read from (`store`: the store file,
    None for an export), which is where its kept artifacts are (`bench.store.artifacts`)."""

    source: str
    run: Run
    records: tuple[Record, ...]
    store: Path | None = None

    @property
    def description(self) -> str:
        """The run id and commit, as the summary names a side: `20261125-213200-3ff6 (commit 29fb857, dirty)`."""
        commit = self.run.commit.get("commit")
        dirty = ", dirty" if self.run.commit.get("dirty") else ""
        return f"{self.run.run_id} (commit {str(commit)[:7]}{dirty})" if commit else f"{self.run.run_id} (no commit)"


def from_store(path: Path, run_id: str | None, source: str) -> Side:
    """The run `run_id` (the newest when None) of the store at `path`, read without changing the file."""
    try:
        with read_store(path) as store:
            run = store.run(run_id)
            records = tuple(store.records(run.run_id))
            notes = list(store.unreadable)
    except BenchError as error:
        # The store's own message names the file; the flag it names may not be the one the user gave.
        raise BenchError(f"{source}: {str(error).removeprefix('--store: ')}") from None
    for note in notes:
        # The warning every reading verb prints: a damaged row is left out, never silently.
        print(f"warning: {path}: {note}", file=sys.stderr)
    return Side(source, run, records, path)


def from_export(path: Path, source: str) -> Side:
    """The run of a JSON export (`python -m bench export --format json`); records of any schema version."""
    try:
        data = json.loads(path.read_text())
    except UnicodeDecodeError:
        raise BenchError(f"{source}: {path} is not a compression-bench export (not text); {_EXPORT}") from None
    except json.JSONDecodeError as error:
        raise BenchError(f"{source}: {path} is not JSON ({error.msg}, line {error.lineno}); {_EXPORT}") from None
    except OSError as error:
        raise BenchError(f"{source}: cannot read {path}: {error.strerror}") from None
    if not (isinstance(data, dict) and isinstance(data.get("run"), dict) and isinstance(data.get("records"), list)):
        raise BenchError(f"{source}: {path} is not a compression-bench export; {_EXPORT}")
    run = _run(data["run"], path, source)
    try:
        records = tuple(load_record(item, f"{path} record {index}") for index, item in enumerate(data["records"]))
    except RecordError as error:
        raise BenchError(f"{source}: {error}") from None
    return Side(source, run, records)


def _run(data: dict[str, Any], path: Path, source: str) -> Run:
    wanted = {f.name for f in fields(Run)}
    missing = sorted(wanted - set(data))
    if missing or not isinstance(data.get("run_id"), str):
        shown = f"lacks {', '.join(missing)}" if missing else "has no run_id"
        raise BenchError(f"{source}: {path} is not a compression-bench export: its run {shown}; {_EXPORT}")
    run = Run(**{key: data[key] for key in wanted})
    if not all(isinstance(part, dict) for part in (run.config, run.host, run.commit)):
        raise BenchError(f"{source}: {path} is not a compression-bench export: its run's config, host or commit")
    return run


def _is_json(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(64).lstrip()[:1] == b"{"
    except OSError:
        return False


def resolve(text: str, store: Path, source: str) -> Side:
    """The side `text` names (see the module's docstring); `source` ("BASE", "CAND") prefixes its errors.

    Raises:
        BenchError: a missing file, a file that is neither a store nor an export, an unknown run id.
    """
    path = Path(text)
    if path.is_file():
        return from_export(path, source) if _is_json(path) else from_store(path, None, source)
    if path.exists():
        raise BenchError(f"{source}: {path} is a folder; give a run id, a store file (PATH[@RUN_ID]) or an export")
    head, at, run_id = text.rpartition("@")
    if at and head and Path(head).is_file():
        if not run_id:
            raise BenchError(f"{source}: '{text}' names no run after '@' (PATH@RUN_ID)")
        return from_store(Path(head), run_id, source)
    if "/" in text or "\\" in text or text.endswith(_PATH_SUFFIXES):
        missing = head if at and head else text
        raise BenchError(f"{source}: no such file {missing}; give a run id in --store, a store file or an export")
    return from_store(store, text, source)
