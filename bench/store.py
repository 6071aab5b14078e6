"""The result store: one SQLite file (WAL), every finished cell committed before the next starts.

Tables: `runs` (config, host and commit fingerprints, times, status), `records` (one row per measured cell, the
whole record as JSON) and `run_records` (which record answers which cell of a run: a run that reuses a finished
cell links the existing record instead of measuring again). Reports read only this file.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.record import SCHEMA_VERSION, check_record

__all__ = ["Store", "open_store"]

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


class Store:
    """Read and write runs and records; each write is its own committed transaction."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._db:
                yield self._db
        except sqlite3.OperationalError as error:
            raise BenchError(f"cannot write the store {self.path}: {error}") from error

    def start_run(
        self, run_id: str, config: dict[str, Any], cells: list[dict[str, Any]], host: dict[str, Any], commit: dict[str, Any],
        owner: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        """Record `run_id` as running; `owner` ({pid, create_time, hostname}) names the process running it."""
        owner = owner or {}
        with self._write() as db:
            db.execute(
                "INSERT INTO runs (run_id, started_at, finished_at, status, config_json, cells_json, host_json, commit_json,"
                " owner_pid, owner_create_time, owner_hostname) VALUES (?, ?, NULL, 'running', ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id, _now(), json.dumps(config), json.dumps(cells), json.dumps(host), json.dumps(commit),
                    owner.get("pid"), owner.get("create_time"), owner.get("hostname"),
                ),
            )  # fmt: skip

    def running_runs(self) -> list[dict[str, Any]]:
        """Runs still marked running, with their owner's pid, create_time and hostname (None when not recorded)."""
        rows = self._db.execute(
            "SELECT run_id, owner_pid, owner_create_time, owner_hostname FROM runs WHERE status = 'running' ORDER BY rowid"
        ).fetchall()
        return [{"run_id": r[0], "pid": r[1], "create_time": r[2], "hostname": r[3]} for r in rows]

    def mark_interrupted(self, run_id: str) -> bool:
        """Mark a run whose process is gone as interrupted; False if it was no longer running (it finished meanwhile)."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE runs SET finished_at = ?, status = 'interrupted' WHERE run_id = ? AND status = 'running'", (_now(), run_id)
            )
        return cursor.rowcount > 0

    def finish_run(self, run_id: str, status: str) -> None:
        with self._write() as db:
            db.execute("UPDATE runs SET finished_at = ?, status = ? WHERE run_id = ?", (_now(), status, run_id))

    def add_record(self, run_id: str, record: dict[str, Any]) -> int:
        """Store a freshly measured record and link it to its cell in `run_id`; returns its id."""
        check_record(record)
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO records (run_id, cell_id, machine_id, status, schema_version, created_at, record_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, record["cell_id"], record["machine_id"], record["status"], SCHEMA_VERSION, _now(), json.dumps(record)),
            )
            record_id = int(cursor.lastrowid or 0)
            db.execute("INSERT OR REPLACE INTO run_records VALUES (?, ?, ?)", (run_id, record["cell_id"], record_id))
        return record_id

    def reuse(self, run_id: str, cell_id: str, record_id: int) -> None:
        """Answer `cell_id` in `run_id` with a record measured earlier."""
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO run_records VALUES (?, ?, ?)", (run_id, cell_id, record_id))

    def finished(self, cell_id: str, machine_id: str) -> int | None:
        """Id of the newest successful record of `cell_id` on `machine_id`, if any."""
        row = self._db.execute(
            "SELECT record_id FROM records WHERE cell_id = ? AND machine_id = ? AND status = 'ok'"
            " AND schema_version = ? ORDER BY record_id DESC LIMIT 1",
            (cell_id, machine_id, SCHEMA_VERSION),
        ).fetchone()
        return None if row is None else int(row[0])

    def runs(self) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT run_id, started_at, finished_at, status, config_json, host_json, commit_json FROM runs ORDER BY started_at, rowid"
        ).fetchall()
        return [
            {"run_id": r[0], "started_at": r[1], "finished_at": r[2], "status": r[3], "config": json.loads(r[4]), "host": json.loads(r[5]), "commit": json.loads(r[6])}
            for r in rows
        ]

    def run(self, run_id: str | None = None) -> dict[str, Any]:
        """One run (the newest when `run_id` is None)."""
        runs = self.runs()
        if not runs:
            raise BenchError(f"the store {self.path} has no runs yet; start one with: python -m bench run")
        if run_id is None:
            return runs[-1]
        for run in runs:
            if run["run_id"] == run_id:
                return run
        raise BenchError(f"unknown run '{run_id}' in {self.path} (newest: {runs[-1]['run_id']})")

    def records(self, run_id: str) -> list[dict[str, Any]]:
        """The records answering the cells of `run_id`, in the order the cells were run."""
        rows = self._db.execute(
            "SELECT r.record_json FROM run_records l JOIN records r ON r.record_id = l.record_id"
            " WHERE l.run_id = ? ORDER BY l.rowid",
            (run_id,),
        ).fetchall()
        return [check_record(json.loads(row[0])) for row in rows]

    def export(self, run_id: str, fmt: str) -> str:
        """The run's records as JSON (complete) or CSV (scalars, nested ones as `table.key`; raw samples stay in JSON)."""
        records = self.records(run_id)
        if fmt == "json":
            return json.dumps({"run": self.run(run_id), "records": records}, indent=2)
        if fmt != "csv":
            raise BenchError(f"--format must be one of csv, json; got '{fmt}'")
        rows = [_flat_scalars(record) for record in records]
        columns = list(dict.fromkeys(key for row in rows for key in row))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()


def _flat_scalars(record: dict[str, Any]) -> dict[str, Any]:
    """A record's scalars, with those of nested tables as `table.key` (params, machine); lists are left out."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items() if not isinstance(v, (dict, list))})
        elif not isinstance(value, list):
            flat[key] = value
    return flat


def _add_owner_columns(connection: sqlite3.Connection) -> None:
    """Add the owner columns to a `runs` table made before they existed (its old runs keep NULL owners)."""
    def missing() -> list[str]:
        present = {row[1] for row in connection.execute("PRAGMA table_info(runs)")}
        return [column for column in _OWNER_COLUMNS if column not in present]

    if not missing():
        return
    # Two runs may open an old store at once: the write lock makes the second see the first one's columns.
    connection.execute("BEGIN IMMEDIATE")
    try:
        for column in missing():
            connection.execute(f"ALTER TABLE runs ADD COLUMN {column} {_OWNER_COLUMNS[column]}")
    except sqlite3.Error:
        connection.rollback()
        raise
    connection.commit()


def open_store(path: Path) -> Store:
    """Open (creating if needed) the store at `path`.

    Raises:
        BenchError: the folder cannot be created or the file is not a writable SQLite database.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(_SCHEMA)
        _add_owner_columns(connection)
    except (FileExistsError, NotADirectoryError):
        raise BenchError(f"--store: cannot open {path} for writing: a parent of it is a file, not a folder") from None
    except (OSError, sqlite3.Error) as error:
        reason = error.strerror if isinstance(error, OSError) else str(error)
        raise BenchError(f"--store: cannot open {path} for writing: {reason}") from None
    return Store(connection, path)
