"""Opening a store file: recognise the suite's own databases, refuse others, and read without writing.

A store is marked with SQLite's `application_id` (the bytes "CBen") and its layout version in `user_version`,
so the suite never adds its tables to another program's database and never writes into a store laid out by a
newer suite. Stores made before the mark are recognised by their tables and marked when next opened for writing.

Reading must not create or change a file: a store at rest is kept in rollback-journal mode (the writer leaves WAL
when it closes), which a read-only connection reads without the `-wal`/`-shm` files WAL would need; a store left
in WAL mode without those files (or in a read-only folder) is read as immutable.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from bench.errors import BenchError

__all__ = [
    "APPLICATION_ID",
    "LAYOUT_VERSION",
    "TABLES",
    "DAMAGED",
    "connect_for_writing",
    "connect_for_reading",
    "leave_wal",
]

APPLICATION_ID = int.from_bytes(b"CBen", "big")
# Version of the tables' layout (records carry their own schema version): 0 for stores made before the mark.
LAYOUT_VERSION = 2
TABLES = ("runs", "records", "run_records")
_HEADER = b"SQLite format 3\x00"
_WAL = 2  # header bytes 18 and 19: 1 for a rollback journal, 2 for WAL
# What a damaged file raises: SQLite's errors, and Python's when SQLite's message quotes bytes that are not UTF-8.
DAMAGED = (sqlite3.DatabaseError, UnicodeDecodeError)


def _check_header(path: Path) -> bytes:
    """The first 100 bytes of an existing, non-empty file, which must be a SQLite database's."""
    try:
        with path.open("rb") as handle:
            header = handle.read(100)
    except IsADirectoryError:
        raise BenchError(f"--store: {path} is a folder; give the path of a .sqlite file") from None
    except OSError as error:
        raise BenchError(f"--store: cannot read {path}: {error.strerror}") from None
    if header and not header.startswith(_HEADER):
        raise BenchError(f"--store: {path} is not a SQLite database (a compression-bench store is one)")
    if header and len(header) < 100:
        raise BenchError(f"--store: {path} is truncated ({len(header)} bytes): not a readable SQLite database")
    return header


def _lenient_text(data: bytes) -> str:
    """Text of a damaged row, with bytes that are not UTF-8 replaced: the row then fails its own checks."""
    return data.decode("utf-8", errors="replace")


def _recognise(db: sqlite3.Connection, path: Path, writing: bool) -> bool:
    """Whether `db` is a store of this suite (True) or a new, empty database (False); refuse anything else."""
    db.text_factory = _lenient_text
    application_id = db.execute("PRAGMA application_id").fetchone()[0]
    layout = db.execute("PRAGMA user_version").fetchone()[0]
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if application_id not in (0, APPLICATION_ID):
        raise BenchError(
            f"--store: {path} belongs to another program (SQLite application id {application_id:#x}); give a"
            " compression-bench store or a new file"
        )
    if application_id == 0 and tables and not set(TABLES) <= tables:
        # A damaged sqlite_master can hold a table name that is a blob, not text: show it as Python writes it.
        shown = ", ".join(sorted(name if isinstance(name, str) else repr(name) for name in tables)[:5])
        raise BenchError(
            f"--store: {path} is another program's SQLite database (tables {shown}); give a compression-bench"
            " store or a new file"
        )
    if layout > LAYOUT_VERSION:
        action = "write to" if writing else "read"
        raise BenchError(
            f"--store: {path} was written by a newer compression-bench (store layout {layout}; this one knows up"
            f" to {LAYOUT_VERSION}) and cannot {action} it: upgrade compression-bench"
        )
    return bool(tables)


def connect_for_writing(path: Path, schema: str, upgrade: Callable[[sqlite3.Connection], None]) -> sqlite3.Connection:
    """Open (creating if needed) the store at `path` in WAL mode, with the suite's tables and mark.

    `upgrade` brings the tables of an older layout up to this one; it runs under the write lock, before the
    store is marked with this layout, so a failure leaves the store as it was.

    Raises:
        BenchError: the folder cannot be made, the file is not a store of this suite, or it cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise BenchError(f"--store: cannot open {path} for writing: a parent of it is a file, not a folder") from None
    except OSError as error:
        raise BenchError(f"--store: cannot create the folder of {path}: {error.strerror}") from None
    if path.exists():
        _check_header(path)
    try:
        db = sqlite3.connect(path, timeout=30)
    except DAMAGED as error:
        raise BenchError(f"--store: cannot open {path} for writing: {error}") from None
    try:
        _recognise(db, path, writing=True)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)  # CREATE ... IF NOT EXISTS: a no-op on a store that has its tables
        db.execute("BEGIN IMMEDIATE")
        try:
            upgrade(db)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {LAYOUT_VERSION}")
        except BaseException:
            db.rollback()
            raise
        db.commit()
    except DAMAGED as error:
        db.close()
        raise BenchError(f"--store: cannot open {path} for writing: {error}") from None
    except BenchError:
        db.close()
        raise
    return db


def connect_for_reading(path: Path) -> sqlite3.Connection | None:
    """Open the store at `path` read-only, creating and changing nothing; None when it has no tables yet.

    Raises:
        BenchError: there is no such file, or it is not a store of this suite.
    """
    if not path.exists():
        raise BenchError(f"--store: no store at {path}; start one with: python -m bench run")
    header = _check_header(path)
    if not header:
        return None
    side_files = all(Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-shm"))
    # A WAL store without its side files would need them made to be read; read it as it is on disk instead.
    modes = ["immutable=1"] if header[18] == _WAL and not side_files else ["mode=ro", "immutable=1"]
    for index, mode in enumerate(modes):
        # In a read-only folder even a read-only connection to a WAL store cannot open; nobody can write there.
        uri = f"file:{urllib.parse.quote(str(path.resolve()))}?{mode}"
        try:
            db, has_tables = _open_read_only(uri, path)
            break
        except sqlite3.OperationalError as error:
            if index + 1 == len(modes):
                raise BenchError(f"--store: cannot read {path}: {error}") from None
        except DAMAGED as error:
            raise BenchError(f"--store: cannot read {path}: {error}") from None
    if not has_tables:
        db.close()
        return None
    return db


def _open_read_only(uri: str, path: Path) -> tuple[sqlite3.Connection, bool]:
    """A read-only connection and whether the database has tables; closed again if anything fails."""
    db = sqlite3.connect(uri, uri=True, timeout=30)
    try:
        return db, _recognise(db, path, writing=False)
    except BaseException:
        db.close()
        raise


def leave_wal(db: sqlite3.Connection) -> None:
    """Checkpoint and return to a rollback journal, so the store at rest is one file that reads need not change.

    Another connection still writing keeps WAL on; that is fine, the last one to close leaves it.
    """
    try:
        db.execute("PRAGMA busy_timeout = 0")  # a concurrent writer keeps WAL on: do not wait for it
        db.execute("PRAGMA journal_mode=DELETE")
    except DAMAGED:
        pass
