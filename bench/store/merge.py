"""Merge stores into one, and reassemble the runs of a sharded matrix into one run of the whole matrix.

Every run is kept with its fingerprints, times and status, and every record with its stored JSON unchanged;
record ids are renumbered and each run's links follow its records (a link to a record an earlier run measured
stays a link to that record). A run already in the target with the same contents is skipped, so merging twice
changes nothing; the same run id with other contents is refused.

Shard runs (`python -m bench run --shard K/N`) of one matrix at one commit also become one merged run: it links
every shard's records, carries the shards' config without `shard` plus `merged_from`, and sorts as the group's
newest run, so `report` and `compare` on the merged store see the whole matrix. Its id is a digest of the shard
runs it joins, which is what keeps a second merge of the same shards from adding it again.

The target is built in a temporary file beside it and renamed over it at the end: a failure leaves it as it was.
Sources are opened read-only and never changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.store.database import Store, open_store, read_store

__all__ = ["MergeOutcome", "merge_stores"]

_RUN_COLUMNS = (
    "run_id",
    "started_at",
    "finished_at",
    "status",
    "config_json",
    "cells_json",
    "host_json",
    "commit_json",
)
_OWNER_COLUMNS = ("owner_pid", "owner_create_time", "owner_hostname")
_RECORD_COLUMNS = ("run_id", "cell_id", "machine_id", "status", "schema_version", "created_at", "record_json")


@dataclass(frozen=True)
class _Run:
    """A run's row as stored (`values` in `_RUN_COLUMNS` order, then the owner) and its links, cell -> record."""

    values: tuple[Any, ...]
    owner: tuple[Any, ...]
    links: tuple[tuple[str, int], ...]

    @property
    def run_id(self) -> str:
        return str(self.values[0])

    def field(self, name: str) -> Any:
        """A column, its JSON parsed (an unreadable one as its text, so it still compares)."""
        value = self.values[_RUN_COLUMNS.index(name)]
        if name.endswith("_json"):
            with contextlib.suppress(TypeError, ValueError):
                return json.loads(value)
        return value


@dataclass
class _Source:
    """One store's rows: its runs in stored order, and its records by id (each a row in `_RECORD_COLUMNS`)."""

    path: Path
    runs: list[_Run]
    records: dict[int, tuple[Any, ...]]


@dataclass
class MergeOutcome:
    """What a merge did, and the lines that say so."""

    into: Path
    runs_added: int = 0
    runs_present: int = 0
    records_added: int = 0
    records_present: int = 0
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"{self.into}: {self.runs_added} runs added ({self.runs_present} already there), {self.records_added}"
            f" records added ({self.records_present} already there)",
            *self.notes,
        ]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _read(store: Store) -> tuple[list[_Run], dict[int, tuple[Any, ...]]]:
    """Every run (with its links) and every record of `store`, as stored."""
    present = {row[1] for row in store.select("PRAGMA table_info(runs)")}
    owner = ", ".join(c if c in present else "NULL" for c in _OWNER_COLUMNS)  # stores made before the owner columns
    links: dict[str, list[tuple[str, int]]] = {}
    for run_id, cell_id, record_id in store.select("SELECT run_id, cell_id, record_id FROM run_records ORDER BY rowid"):
        links.setdefault(run_id, []).append((cell_id, int(record_id)))
    runs = [
        _Run(tuple(row[: len(_RUN_COLUMNS)]), tuple(row[len(_RUN_COLUMNS) :]), tuple(links.get(row[0], ())))
        for row in store.select(f"SELECT {', '.join(_RUN_COLUMNS)}, {owner} FROM runs ORDER BY started_at, rowid")
    ]
    records = {
        int(row[0]): tuple(row[1:])
        for row in store.select(f"SELECT record_id, {', '.join(_RECORD_COLUMNS)} FROM records ORDER BY record_id")
    }
    return runs, records


def _open_source(path: Path) -> _Source:
    try:
        store = read_store(path)
    except BenchError as error:
        raise BenchError(f"merge: {str(error).removeprefix('--store: ')}") from None
    with store:
        if not store.select("SELECT name FROM sqlite_master WHERE name = 'runs'"):
            raise BenchError(f"merge: {path} has no tables: not a compression-bench store")
        runs, records = _read(store)
    return _Source(path, runs, records)


class _Target:
    """The store being built, inside its one transaction."""

    def __init__(self, db: sqlite3.Connection, outcome: MergeOutcome) -> None:
        self.db = db
        self.outcome = outcome

    def runs(self, run_id: str | None = None) -> list[_Run]:
        """Every run, oldest first as `Store.runs` orders them; only `run_id`'s when given."""
        columns = f"{', '.join(_RUN_COLUMNS)}, {', '.join(_OWNER_COLUMNS)}"
        where, args = ("WHERE run_id = ?", (run_id,)) if run_id is not None else ("", ())
        rows = self.db.execute(f"SELECT {columns} FROM runs {where} ORDER BY started_at, rowid", args).fetchall()
        return [
            _Run(tuple(row[: len(_RUN_COLUMNS)]), tuple(row[len(_RUN_COLUMNS) :]), self._links(row[0])) for row in rows
        ]

    def _links(self, run_id: str) -> tuple[tuple[str, int], ...]:
        rows = self.db.execute("SELECT cell_id, record_id FROM run_records WHERE run_id = ? ORDER BY rowid", (run_id,))
        return tuple((cell_id, int(record_id)) for cell_id, record_id in rows)

    def run(self, run_id: str) -> _Run | None:
        found = self.runs(run_id)
        return found[0] if found else None

    def record(self, record_id: int) -> tuple[Any, ...] | None:
        columns = ", ".join(_RECORD_COLUMNS)
        row = self.db.execute(f"SELECT {columns} FROM records WHERE record_id = ?", (record_id,)).fetchone()
        return tuple(row) if row is not None else None

    def add_record(self, values: tuple[Any, ...]) -> int:
        """The id of a record with exactly these contents, inserted unless one is there already."""
        match = " AND ".join(f"{column} = ?" for column in _RECORD_COLUMNS)
        found = self.db.execute(f"SELECT record_id FROM records WHERE {match}", values).fetchone()
        if found is not None:
            self.outcome.records_present += 1
            return int(found[0])
        marks = ", ".join("?" for _ in _RECORD_COLUMNS)
        cursor = self.db.execute(f"INSERT INTO records ({', '.join(_RECORD_COLUMNS)}) VALUES ({marks})", values)
        self.outcome.records_added += 1
        return int(cursor.lastrowid or 0)

    def add_run(self, run: _Run) -> None:
        columns = (*_RUN_COLUMNS, *_OWNER_COLUMNS)
        marks = ", ".join("?" for _ in columns)
        self.db.execute(f"INSERT INTO runs ({', '.join(columns)}) VALUES ({marks})", (*run.values, *run.owner))
        self.db.executemany(
            "INSERT INTO run_records (run_id, cell_id, record_id) VALUES (?, ?, ?)",
            [(run.run_id, cell_id, record_id) for cell_id, record_id in run.links],
        )
        self.outcome.runs_added += 1


def _same(first: _Run, second: _Run, first_records: Any, second_records: Any) -> bool:
    """Whether two stored runs are one: the same fingerprints, times and status, and links to equal records."""
    if any(first.field(name) != second.field(name) for name in _RUN_COLUMNS):
        return False
    linked = [{cell: records(record_id) for cell, record_id in run.links} for run, records in
              ((first, first_records), (second, second_records))]  # fmt: skip
    return linked[0] == linked[1]


def _copy(source: _Source, target: _Target) -> None:
    """Add the source's runs and records that the target lacks; refuse a run id whose contents differ."""
    for run in source.runs:
        there = target.run(run.run_id)
        if there is not None and not _same(run, there, source.records.get, target.record):
            raise BenchError(
                f"merge: run {run.run_id} of {source.path} is already in {target.outcome.into} with other contents"
                " (status, config or records differ); nothing was merged"
            )
    new_ids = {record_id: target.add_record(values) for record_id, values in source.records.items()}
    for run in source.runs:
        if target.run(run.run_id) is not None:
            target.outcome.runs_present += 1
            continue
        links = tuple((cell, new_ids[record_id]) for cell, record_id in run.links if record_id in new_ids)
        target.add_run(_Run(run.values, run.owner, links))


def _shard_of(run: _Run) -> dict[str, Any] | None:
    config = run.field("config_json")
    shard = config.get("shard") if isinstance(config, dict) else None
    if not isinstance(shard, dict):
        return None
    index, count = shard.get("index"), shard.get("count")
    if type(index) is not int or type(count) is not int or not 1 <= index <= count:
        return None  # not what a sharded run writes (a hand edit): the run stays a plain run
    return shard if isinstance(shard.get("matrix"), str) else None


def _commit_of(run: _Run) -> dict[str, Any]:
    commit = run.field("commit_json")
    return commit if isinstance(commit, dict) else {}


def _reassemble(target: _Target) -> None:
    """Add one merged run per matrix whose shard runs the target holds, unless it is there already."""
    groups: dict[tuple[str, int, str | None], dict[int, _Run]] = {}
    for run in target.runs():  # oldest first: a shard run later in the list replaces an earlier one
        shard = _shard_of(run)
        if shard is None:
            continue
        key = (str(shard["matrix"]), int(shard["count"]), _commit_of(run).get("commit"))
        chosen = groups.setdefault(key, {})
        earlier = chosen.get(int(shard["index"]))
        # The newest finished run of a shard answers for it (a resumed shard's last run), else its newest run.
        if earlier is None or run.field("status") == "finished" or earlier.field("status") != "finished":
            chosen[int(shard["index"])] = run
    for (matrix, count, commit), chosen in groups.items():
        _merged_run(target, matrix, count, commit, chosen)


def _merged_run(target: _Target, matrix: str, count: int, commit: str | None, chosen: dict[int, _Run]) -> None:
    shards = [chosen[index] for index in sorted(chosen)]
    merged_id = "merged-" + _digest(",".join(sorted(run.run_id for run in shards)))[:12]
    sizes = (_shard_of(shards[0]) or {}).get("sizes")
    if not (isinstance(sizes, list) and len(sizes) == count):
        sizes = [1] * count  # a shard run that does not list the shards' sizes: every shard is needed
    # A shard that the matrix gives no cells stores no run: it is not missing.
    needed = [index for index in range(1, count + 1) if sizes[index - 1]]
    missing = [index for index in needed if index not in chosen]
    unfinished = [f"{index} ({run.field('status')})" for index, run in sorted(chosen.items())
                  if run.field("status") != "finished"]  # fmt: skip
    status = "partial" if missing or unfinished else "finished"
    what = f"matrix {matrix} ({count} shards, commit {(commit or 'unknown')[:12]})"
    if target.run(merged_id) is not None:
        target.outcome.notes.append(f"{what}: merged run {merged_id} already there ({status})")
        return
    config = {key: value for key, value in shards[0].field("config_json").items() if key != "shard"}
    config["merged_from"] = [run.run_id for run in shards]
    cells: list[dict[str, Any]] = []
    for run in shards:
        listed = run.field("cells_json")
        cells += [cell for cell in listed if isinstance(cell, dict)] if isinstance(listed, list) else []
    cells.sort(key=lambda cell: cell.get("position", len(cells)))
    position = {cell.get("id"): index for index, cell in enumerate(cells)}
    links = sorted((link for run in shards for link in run.links), key=lambda link: position.get(link[0], len(cells)))
    finished = [run.field("finished_at") for run in shards]
    commits = [_commit_of(run) for run in shards]
    dirty = [c.get("dirty") for c in commits]
    values = (
        merged_id,
        max(run.field("started_at") for run in shards),
        max(finished) if None not in finished else None,
        status,
        json.dumps(config),
        json.dumps(cells),
        json.dumps(shards[0].field("host_json")),  # each shard's own host stays with its shard run
        json.dumps({**commits[0], "dirty": True if True in dirty else dirty[0]}),
    )
    target.add_run(_Run(values, (None, None, None), tuple(links)))
    said = f"{what}: merged run {merged_id} {status}, shards {', '.join(map(str, sorted(chosen)))} of {count}"
    if missing:
        said += f"; missing shard{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))}"
    if unfinished:
        said += f"; not finished: shard {', '.join(unfinished)}"
    target.outcome.notes.append(said)


def _same_file(first: Path, second: Path) -> bool:
    if first.exists() and second.exists():
        return first.samefile(second)
    return first.resolve() == second.resolve()


def merge_stores(sources: Sequence[Path], into: Path) -> MergeOutcome:
    """Merge the stores `sources` into `into` (created if missing), all or nothing.

    Raises:
        BenchError: no sources, `into` is one of them, a source or `into` is not a store of this suite (or is one
            of a newer suite), or a run id is in two stores with different contents; `into` is then unchanged.
    """
    if not sources:
        raise BenchError("merge needs at least one source store: python -m bench merge A.sqlite B.sqlite --into M")
    for source in sources:
        if _same_file(source, into):
            raise BenchError(f"--into {into} is also a source: merge into a new store or another one")
    opened = [_open_source(path) for path in sources]
    outcome = MergeOutcome(into)
    existing = None
    if into.exists():
        try:
            existing = read_store(into)
        except BenchError as error:
            raise BenchError(f"--into: {str(error).removeprefix('--store: ')}") from None
    try:
        handle, name = tempfile.mkstemp(prefix=f".{into.name}.", suffix=".merging", dir=into.parent)
    except OSError as error:
        if existing is not None:
            existing.close()
        raise BenchError(f"--into: cannot write beside {into}: {error.strerror}") from None
    os.close(handle)
    temporary = Path(name)
    try:
        if existing is not None:
            with existing:
                existing.backup(temporary)
            os.chmod(temporary, into.stat().st_mode)
        else:
            os.chmod(temporary, 0o644)
        _build(temporary, opened, outcome)
        os.replace(temporary, into)
    except BenchError as error:
        raise BenchError(str(error).replace("--store: ", "--into: ", 1)) from None
    except OSError as error:
        raise BenchError(f"--into: cannot write {into}: {error.strerror}") from None
    finally:
        for leftover in (temporary, *(Path(f"{temporary}{suffix}") for suffix in ("-wal", "-shm", "-journal"))):
            leftover.unlink(missing_ok=True)
    return outcome


def _build(path: Path, sources: Sequence[_Source], outcome: MergeOutcome) -> None:
    """Copy every source into the store at `path` and add the merged runs of its shards, in one transaction."""
    with open_store(path) as store, store.transaction() as db:
        target = _Target(db, outcome)
        for source in sources:
            _copy(source, target)
        _reassemble(target)
