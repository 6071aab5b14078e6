"""The result store: one SQLite file, every finished cell committed before the next starts.

Tables: `runs` (config, host and commit fingerprints, times, status), `records` (one row per measured cell, the
whole typed record as JSON, with its schema version) and `run_records` (which record answers which cell of a
run: a run that reuses a finished cell links the existing record instead of measuring again). Reports read only
this file, through `read_store`, which changes nothing; only `run` opens it for writing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.records import SCHEMA_VERSION, NewerSchemaError, Record, RecordError, load_record, record_json
from bench.store._sqlite import DAMAGED, connect_for_reading, connect_for_writing, leave_wal

__all__ = ["DEFAULT_STORE", "Run", "Measured", "Store", "open_store", "read_store"]

DEFAULT_STORE = Path("results") / "bench.sqlite"
"""Where `run` writes and every other verb reads, unless `--store` (or a config's `store`) says otherwise."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    config_json TEXT NOT NULL,
    cells_json TEXT NOT NULL,
    host_json TEXT NOT NULL,
    commit_json TEXT NOT NULL,
    owner_pid INTEGER,
    owner_create_time REAL,
    owner_hostname TEXT
);
CREATE TABLE IF NOT EXISTS records (
    record_id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    cell_id TEXT NOT NULL,
    machine_id TEXT NOT NULL,
    status TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    record_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_cell ON records(cell_id, machine_id, status);
CREATE TABLE IF NOT EXISTS run_records (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    cell_id TEXT NOT NULL,
    record_id INTEGER NOT NULL REFERENCES records(record_id),
    PRIMARY KEY (run_id, cell_id)
);
"""
# The process that owns a running run, so a later run can tell a dead run (killed, crashed) from a live
# concurrent one; added to stores created before these columns existed.
_OWNER_COLUMNS = {"owner_pid": "INTEGER", "owner_create_time": "REAL", "owner_hostname": "TEXT"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Run:
    """One stored run: when, how it ended, and the config, host and commit it ran with."""

    run_id: str
    started_at: str
    finished_at: str | None
    status: str
    config: dict[str, Any]
    host: dict[str, Any]
    commit: dict[str, Any]

    @property
    def models(self) -> list[str]:
        models = self.config.get("models")
        return [str(m) for m in models] if isinstance(models, list) else []


@dataclass(frozen=True)
class Measured:
    """A stored record with its id and the run that measured it (later runs may have reused it)."""

    record_id: int
    run_id: str
    record: Record


class Store:
    """Read and write runs and records; each write is its own committed transaction.

    Rows that cannot be read (a disk fault, a hand edit) are left out of what is returned and described in
    `unreadable`, so one bad row never hides a run's other results; a record of a newer schema is refused.
    """

    def __init__(self, connection: sqlite3.Connection | None, path: Path, writable: bool) -> None:
        self._db = connection
        self.path = path
        self.writable = writable
        self.unreadable: list[str] = []

    def close(self) -> None:
        if self._db is not None:
            if self.writable:
                leave_wal(self._db)
            self._db.close()
            self._db = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self._db is None or not self.writable:
            raise RuntimeError("the store was opened for reading")
        try:
            with self._db:
                yield self._db
        except DAMAGED as error:
            raise BenchError(f"cannot write the store {self.path}: {error}") from error

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self._db is None:
            return []
        try:
            return self._db.execute(sql, args).fetchall()
        except DAMAGED as error:
            raise BenchError(f"--store: cannot read {self.path}: {error}") from None

    def select(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query as stored, for tools that copy them unchanged (`bench.store.merge`); none without tables."""
        return self._rows(sql, args)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection inside one transaction, for writers of raw rows (`store.merge`): all of it or nothing."""
        with self._write() as db:
            yield db

    def backup(self, path: Path) -> None:
        """Copy the whole store into the database file at `path` (SQLite's backup: consistent while a run writes)."""
        if self._db is None:
            return
        target = sqlite3.connect(path)
        try:
            self._db.backup(target)
        except DAMAGED as error:
            raise BenchError(f"--store: cannot copy {self.path}: {error}") from None
        finally:
            target.close()

    def start_run(
        self,
        run_id: str,
        config: dict[str, Any],
        cells: list[dict[str, Any]],
        host: dict[str, Any],
        commit: dict[str, Any],
        owner: dict[str, Any] | None = None,
    ) -> None:
        """Record `run_id` as running; `owner` ({pid, create_time, hostname}) names the process running it."""
        owner = owner or {}
        with self._write() as db:
            db.execute(
                "INSERT INTO runs (run_id, started_at, finished_at, status, config_json, cells_json, host_json,"
                " commit_json, owner_pid, owner_create_time, owner_hostname)"
                " VALUES (?, ?, NULL, 'running', ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id, _now(), json.dumps(config), json.dumps(cells), json.dumps(host), json.dumps(commit),
                    owner.get("pid"), owner.get("create_time"), owner.get("hostname"),
                ),
            )  # fmt: skip

    def running_runs(self) -> list[dict[str, Any]]:
        """Runs still marked running, with their owner's pid, create_time and hostname (None when not recorded)."""
        rows = self._rows(
            "SELECT run_id, owner_pid, owner_create_time, owner_hostname FROM runs"
            " WHERE status = 'running' ORDER BY rowid"
        )
        return [{"run_id": r[0], "pid": r[1], "create_time": r[2], "hostname": r[3]} for r in rows]

    def mark_interrupted(self, run_id: str) -> bool:
        """Mark a run whose process is gone as interrupted.

        Returns False if it was no longer running (it finished meanwhile).
        """
        with self._write() as db:
            cursor = db.execute(
                "UPDATE runs SET finished_at = ?, status = 'interrupted' WHERE run_id = ? AND status = 'running'",
                (_now(), run_id),
            )
        return cursor.rowcount > 0

    def finish_run(self, run_id: str, status: str) -> None:
        with self._write() as db:
            db.execute("UPDATE runs SET finished_at = ?, status = ? WHERE run_id = ?", (_now(), status, run_id))

    def add_record(self, run_id: str, record: Record) -> int:
        """Store a freshly measured record and link it to its cell in `run_id`; returns its id."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO records (run_id, cell_id, machine_id, status, schema_version, created_at, record_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    record.cell_id,
                    record.machine_id,
                    record.status,
                    SCHEMA_VERSION,
                    _now(),
                    json.dumps(record_json(record)),
                ),
            )
            record_id = int(cursor.lastrowid or 0)
            db.execute("INSERT OR REPLACE INTO run_records VALUES (?, ?, ?)", (run_id, record.cell_id, record_id))
        return record_id

    def reuse(self, run_id: str, cell_id: str, record_id: int) -> None:
        """Answer `cell_id` in `run_id` with a record measured earlier."""
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO run_records VALUES (?, ?, ?)", (run_id, cell_id, record_id))

    def finished(self, cell_id: str, machine_id: str, keep_skip: Callable[[Record], bool] | None = None) -> int | None:
        """Id of the newest readable record of `cell_id` on `machine_id` that answers the cell for good, if any.

        An ok record does; a skipped one does when `keep_skip` accepts it (a skip the code and the config decide
        comes again on every run, one the machine decides may not: the caller knows which is which). Records of
        older schema versions count (they are migrated when read); an unreadable one does not, so its cell is
        measured again.
        """
        statuses = "('ok', 'skipped')" if keep_skip is not None else "('ok')"
        rows = self._rows(
            "SELECT record_id, record_json FROM records WHERE cell_id = ? AND machine_id = ?"
            f" AND status IN {statuses} AND schema_version <= ? ORDER BY record_id DESC",
            (cell_id, machine_id, SCHEMA_VERSION),
        )
        for record_id, text in rows:
            record = self._load(record_id, text)
            if record is not None and (record.ok or (keep_skip is not None and keep_skip(record))):
                return int(record_id)
        return None

    def newest_schema(self) -> int | None:
        """The newest schema version of the stored records (None for a store without records)."""
        rows = self._rows("SELECT MAX(schema_version) FROM records")
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def runs(self) -> list[Run]:
        """Every run, oldest first; a run whose stored JSON is unreadable is left out and noted."""
        rows = self._rows(
            "SELECT run_id, started_at, finished_at, status, config_json, host_json, commit_json FROM runs"
            " ORDER BY started_at, rowid"
        )
        runs = []
        for run_id, started, finished, status, *texts in rows:
            try:
                config, host, commit = (json.loads(text) for text in texts)
                if not all(isinstance(part, dict) for part in (config, host, commit)):
                    raise ValueError("not an object")
                runs.append(Run(str(run_id), str(started), finished, str(status), config, host, commit))
            except (TypeError, ValueError) as error:
                self.unreadable.append(f"run {run_id}: its stored description is unreadable ({error}); left out")
        return runs

    def run(self, run_id: str | None = None) -> Run:
        """One run (the newest when `run_id` is None)."""
        runs = self.runs()
        if not runs:
            raise BenchError(f"the store {self.path} has no runs yet; start one with: python -m bench run")
        if run_id is None:
            return runs[-1]
        for run in runs:
            if run.run_id == run_id:
                return run
        raise BenchError(
            f"unknown run '{run_id}' in {self.path} (newest: {runs[-1].run_id}; see: python -m bench list runs)"
        )

    def records(self, run_id: str) -> list[Record]:
        """The readable records answering the cells of `run_id`, in the order the cells were run."""
        rows = self._rows(
            "SELECT r.record_id, r.record_json FROM run_records l JOIN records r ON r.record_id = l.record_id"
            " WHERE l.run_id = ? ORDER BY l.rowid",
            (run_id,),
        )
        loaded = (self._load(record_id, text) for record_id, text in rows)
        return [record for record in loaded if record is not None]

    def measured(self) -> list[Measured]:
        """Every readable record that answers a cell of some run, once each, with the run that measured it.

        A record reused by later runs is one measurement: history places it at its measuring run only. Records
        no run links any more (replaced by measuring the cell again in the same run) are left out. Ordered by
        record id, i.e. in the order they were measured.
        """
        rows = self._rows(
            "SELECT r.record_id, r.run_id, r.record_json FROM records r"
            " WHERE r.record_id IN (SELECT record_id FROM run_records) ORDER BY r.record_id"
        )
        found = []
        for record_id, run_id, text in rows:
            record = self._load(record_id, text)
            if record is not None:
                found.append(Measured(int(record_id), str(run_id), record))
        return found

    def _load(self, record_id: Any, text: Any) -> Record | None:
        try:
            record = load_record(json.loads(text), f"record {record_id}")
        except NewerSchemaError as error:
            raise BenchError(f"{self.path}: {error}") from None
        except RecordError as error:
            note = f"{error}; left out"
        except (TypeError, ValueError) as error:
            note = f"record {record_id} is not JSON ({error}); left out"
        else:
            return record
        if note not in self.unreadable:
            self.unreadable.append(note)
        return None


def _add_owner_columns(connection: sqlite3.Connection) -> None:
    """Add the owner columns to a `runs` table made before they existed (its old runs keep NULL owners).

    Called under the store's write lock, so a second run opening an old store at once sees the first's columns.
    """
    present = {row[1] for row in connection.execute("PRAGMA table_info(runs)")}
    for column, declaration in _OWNER_COLUMNS.items():
        if column not in present:
            connection.execute(f"ALTER TABLE runs ADD COLUMN {column} {declaration}")


def open_store(path: Path) -> Store:
    """Open (creating if needed) the store at `path` for a run that writes to it.

    Raises:
        BenchError: the folder cannot be created, the file is not a store of this suite (or of a newer one),
            or it is not writable.
    """
    return _checked(Store(connect_for_writing(path, _SCHEMA, _add_owner_columns), path, writable=True))


def read_store(path: Path) -> Store:
    """Open the store at `path` for reading only: no file is created or changed, a read-only folder is fine.

    Raises:
        BenchError: there is no store at `path`, or the file is not a store of this suite (or of a newer one).
    """
    return _checked(Store(connect_for_reading(path), path, writable=False))


def _checked(store: Store) -> Store:
    """`store`, unless a newer suite wrote records into it: this one would misread them or write beside them."""
    newest = store.newest_schema()
    if newest is not None and newest > SCHEMA_VERSION:
        store.close()
        raise BenchError(
            f"--store: {store.path} holds records of schema version {newest}, written by a newer compression-bench"
            f" (this one reads versions 1 to {SCHEMA_VERSION}): upgrade compression-bench"
        )
    return store
