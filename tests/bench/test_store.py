"""The SQLite store: round trip, resume lookups, schema versions, export, and unwritable paths."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bench.errors import BenchError
from bench.record import SCHEMA_VERSION, base_record, machine_id
from bench.store import open_store

MACHINE = {"arch": "x86_64", "cpu_model": "Test CPU", "cpu_count": 2, "memory_bytes": 1, "hostname": "h", "torch": "2", "cuda_device": None}
OTHER_MACHINE = {**MACHINE, "cpu_model": "Other CPU"}


def _record(cell: str, status: str = "ok", machine: dict[str, Any] = MACHINE, **fields: Any) -> dict[str, Any]:
    cell_json = {"kind": "model", "model": "digits_cnn", "compressor": "none", "params": {}, "target": "cpu", "threads": 1, "batch": 1, "finetune_steps": 0}
    record = base_record(cell_json, cell, machine)
    record.update(status=status, speedup_median=1.25, samples_s=[0.1, 0.2, 0.3], **fields)
    if status != "ok":
        record["error"] = "RuntimeError: boom"
    return record


@pytest.fixture
def store(tmp_path: Path):
    opened = open_store(tmp_path / "deep" / "er" / "bench.sqlite")
    yield opened
    opened.close()


def test_open_creates_parent_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "s.sqlite"
    open_store(path).close()
    assert path.is_file()


def test_round_trip(store) -> None:
    store.start_run("r1", {"models": ["digits_cnn"]}, [{"id": "c1"}], {"hostname": "h"}, {"commit": None})
    records = [_record("c1"), _record("c2", status="failed")]
    ids = [store.add_record("r1", r) for r in records]
    assert ids[0] < ids[1]
    assert store.records("r1") == records
    store.finish_run("r1", "finished")
    (run,) = store.runs()
    assert run["run_id"] == "r1" and run["status"] == "finished" and run["finished_at"] is not None
    assert run["config"] == {"models": ["digits_cnn"]}
    assert store.run()["run_id"] == "r1" and store.run("r1")["run_id"] == "r1"


def test_records_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    first = open_store(path)
    first.start_run("r1", {}, [], {}, {})
    first.add_record("r1", _record("c1"))
    first.close()
    second = open_store(path)
    assert [r["cell_id"] for r in second.records("r1")] == ["c1"]
    second.close()


def test_finished_only_ok_records_of_the_same_machine(store) -> None:
    store.start_run("r1", {}, [], {}, {})
    ok = store.add_record("r1", _record("c1"))
    store.add_record("r1", _record("c2", status="failed"))
    store.add_record("r1", _record("c3", status="skipped"))
    store.add_record("r1", _record("c4", machine=OTHER_MACHINE))
    mine = machine_id(MACHINE)
    assert store.finished("c1", mine) == ok
    assert store.finished("c2", mine) is None
    assert store.finished("c3", mine) is None
    assert store.finished("c4", mine) is None
    assert store.finished("c4", machine_id(OTHER_MACHINE)) is not None
    assert store.finished("missing", mine) is None


def test_finished_returns_the_newest(store) -> None:
    store.start_run("r1", {}, [], {}, {})
    store.add_record("r1", _record("c1"))
    newest = store.add_record("r1", _record("c1"))
    assert store.finished("c1", machine_id(MACHINE)) == newest


def test_reuse_links_an_old_record_into_a_new_run(store) -> None:
    store.start_run("r1", {}, [], {}, {})
    old = store.add_record("r1", _record("c1", note="first"))
    store.start_run("r2", {}, [], {}, {})
    store.reuse("r2", "c1", old)
    store.add_record("r2", _record("c2"))
    assert [r["cell_id"] for r in store.records("r2")] == ["c1", "c2"]
    assert store.records("r2")[0]["note"] == "first"
    assert [r["cell_id"] for r in store.records("r1")] == ["c1"]


def test_record_of_another_schema_version_raises_on_read(store) -> None:
    store.start_run("r1", {}, [], {}, {})
    store.add_record("r1", _record("c1"))
    future = {**_record("c2"), "schema_version": SCHEMA_VERSION + 1}
    connection = sqlite3.connect(store.path)
    with connection:
        cursor = connection.execute(
            "INSERT INTO records (run_id, cell_id, machine_id, status, schema_version, created_at, record_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ("r1", "c2", future["machine_id"], "ok", SCHEMA_VERSION + 1, "now", json.dumps(future)),
        )
        connection.execute("INSERT INTO run_records VALUES (?, ?, ?)", ("r1", "c2", cursor.lastrowid))
    connection.close()
    with pytest.raises(BenchError, match=f"schema version {SCHEMA_VERSION + 1}"):
        store.records("r1")
    # and such a record is never offered for reuse
    assert store.finished("c2", future["machine_id"]) is None


def test_add_record_rejects_bad_records(store) -> None:
    store.start_run("r1", {}, [], {}, {})
    with pytest.raises(BenchError, match="schema version"):
        store.add_record("r1", {**_record("c1"), "schema_version": 99})
    with pytest.raises(BenchError, match="status 'weird'"):
        store.add_record("r1", {**_record("c1"), "status": "weird"})
    incomplete = _record("c1")
    del incomplete["model"]
    with pytest.raises(BenchError, match="lacks model"):
        store.add_record("r1", incomplete)
    assert store.records("r1") == []


def test_export_csv_and_json(store) -> None:
    store.start_run("r1", {"models": []}, [], {}, {})
    records = [_record("c1"), _record("c2", status="failed", extra_scalar=3)]
    for record in records:
        store.add_record("r1", record)
    rows = list(csv.DictReader(io.StringIO(store.export("r1", "csv"))))
    assert len(rows) == 2
    assert [row["cell_id"] for row in rows] == ["c1", "c2"]
    header = rows[0].keys()
    for key in ("cell_id", "model", "status", "speedup_median", "extra_scalar"):
        assert key in header
    for key in ("params", "machine", "samples_s"):
        assert key not in header  # not scalars: JSON only
    assert rows[1]["status"] == "failed" and rows[1]["error"] == "RuntimeError: boom"
    assert float(rows[0]["speedup_median"]) == 1.25

    data = json.loads(store.export("r1", "json"))
    assert data["run"]["run_id"] == "r1"
    assert data["records"] == records
    assert data["records"][0]["samples_s"] == [0.1, 0.2, 0.3]


def test_export_unknown_format(store) -> None:
    store.start_run("r1", {}, [], {}, {})
    with pytest.raises(BenchError, match="'xml'"):
        store.export("r1", "xml")


def test_run_lookup_errors(store) -> None:
    with pytest.raises(BenchError, match="no runs yet"):
        store.run()
    store.start_run("r1", {}, [], {}, {})
    with pytest.raises(BenchError, match="unknown run 'zzz'"):
        store.run("zzz")


def test_unwritable_store_path_raises_with_the_path(tmp_path: Path) -> None:
    regular = tmp_path / "file"
    regular.write_text("not a folder")
    path = regular / "bench.sqlite"
    with pytest.raises(BenchError) as info:
        open_store(path)
    assert str(path) in str(info.value)
    assert "--store" in str(info.value)


def test_a_non_sqlite_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(BenchError, match="junk.sqlite"):
        open_store(path)
