"""The SQLite store: round trip of typed records, resume lookups, schema versions, and files it must refuse."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.records import SCHEMA_VERSION, ModelRecord, machine_id, record_json
from bench.store.database import Store, open_store, read_store
from tests.bench.record_factory import MACHINE, model_record

OTHER_MACHINE = {**MACHINE, "cpu_model": "Other CPU"}


def _record(cell: str, status: str = "ok", machine: dict = MACHINE, **fields: object) -> ModelRecord:
    """A record answering cell `cell` (its id forced, so tests can name cells)."""
    return dataclasses.replace(model_record(status=status, machine=machine, speedup=1.25, **fields), cell_id=cell)


@pytest.fixture
def store(tmp_path: Path):
    opened = open_store(tmp_path / "deep" / "er" / "bench.sqlite")
    yield opened
    opened.close()


def _insert_raw(path: Path, run_id: str, cell_id: str, text: str, version: int = SCHEMA_VERSION) -> None:
    """A row written behind the store's back: by hand, by a disk fault, or by another version of the suite."""
    connection = sqlite3.connect(path)
    with connection:
        cursor = connection.execute(
            "INSERT INTO records (run_id, cell_id, machine_id, status, schema_version, created_at, record_json)"
            " VALUES (?, ?, ?, 'ok', ?, 'now', ?)",
            (run_id, cell_id, machine_id(MACHINE), version, text),
        )
        connection.execute("INSERT OR REPLACE INTO run_records VALUES (?, ?, ?)", (run_id, cell_id, cursor.lastrowid))
    connection.close()


def test_open_creates_parent_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "s.sqlite"
    open_store(path).close()
    assert path.is_file()


def test_round_trip_keeps_every_typed_field(store: Store) -> None:
    store.start_run("r1", {"models": ["digits_cnn"]}, [{"id": "c1"}], {"hostname": "h"}, {"commit": None})
    records = [_record("c1", top1=0.9), _record("c2", status="failed")]
    ids = [store.add_record("r1", r) for r in records]
    assert ids[0] < ids[1]
    assert store.records("r1") == records
    assert store.records("r1")[0].timing.samples_s == records[0].timing.samples_s
    store.finish_run("r1", "finished")
    (run,) = store.runs()
    assert run.run_id == "r1" and run.status == "finished" and run.finished_at is not None
    assert run.config == {"models": ["digits_cnn"]} and run.models == ["digits_cnn"]
    assert store.run().run_id == "r1" and store.run("r1").run_id == "r1"


def test_records_survive_reopening_and_read_only_opening(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with open_store(path) as first:
        first.start_run("r1", {}, [], {}, {})
        first.add_record("r1", _record("c1"))
    with open_store(path) as second:
        assert [r.cell_id for r in second.records("r1")] == ["c1"]
    with read_store(path) as reader:
        assert [r.cell_id for r in reader.records("r1")] == ["c1"]


def test_finished_only_ok_records_of_the_same_machine(store: Store) -> None:
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


def test_finished_takes_a_skip_only_where_the_caller_keeps_it(store: Store) -> None:
    store.start_run("r1", {}, [], {}, {})
    ok = store.add_record("r1", _record("c1"))
    skip = store.add_record("r1", _record("c1", status="skipped", error="cannot export"))
    mine = machine_id(MACHINE)
    assert store.finished("c1", mine) == ok  # a skip is measured again unless the caller says it holds
    assert store.finished("c1", mine, keep_skip=lambda record: record.error == "cannot export") == skip
    assert store.finished("c1", mine, keep_skip=lambda record: False) == ok
    only_skip = store.add_record("r1", _record("c2", status="skipped", error="not installed"))
    assert store.finished("c2", mine, keep_skip=lambda record: record.error == "not installed") == only_skip
    assert store.finished("c2", mine, keep_skip=lambda record: False) is None


def test_finished_returns_the_newest_readable(store: Store) -> None:
    store.start_run("r1", {}, [], {}, {})
    readable = store.add_record("r1", _record("c1"))
    newest = store.add_record("r1", _record("c1"))
    assert store.finished("c1", machine_id(MACHINE)) == newest
    _insert_raw(store.path, "r1", "c1", "{not json")
    # the corrupt newest row is passed over: the cell is answered by the last good one, or measured again
    assert store.finished("c1", machine_id(MACHINE)) == newest != readable


def test_reuse_links_an_old_record_into_a_new_run(store: Store) -> None:
    store.start_run("r1", {}, [], {}, {})
    old = store.add_record("r1", _record("c1", execution_notes="first"))
    store.start_run("r2", {}, [], {}, {})
    store.reuse("r2", "c1", old)
    store.add_record("r2", _record("c2"))
    assert [r.cell_id for r in store.records("r2")] == ["c1", "c2"]
    assert store.records("r2")[0].execution_notes == "first"
    assert [r.cell_id for r in store.records("r1")] == ["c1"]


@pytest.mark.parametrize(
    "text",
    ["{not json", "[1, 2]", json.dumps({"schema_version": SCHEMA_VERSION, "kind": "model"}),
     json.dumps({**record_json(_record("x")), "threads": "one"}),
     json.dumps({**record_json(_record("x")), "kind": "hologram"})],
    ids=["not-json", "not-an-object", "missing-fields", "wrong-type", "unknown-kind"],
)  # fmt: skip
def test_one_corrupt_row_is_left_out_and_named(store: Store, text: str) -> None:
    store.start_run("r1", {}, [], {}, {})
    store.add_record("r1", _record("c1"))
    _insert_raw(store.path, "r1", "c2", text)
    store.add_record("r1", _record("c3"))
    assert [r.cell_id for r in store.records("r1")] == ["c1", "c3"]
    (note,) = store.unreadable
    assert note.startswith("record ") and note.endswith("left out") and "\n" not in note


def test_a_record_of_a_newer_schema_is_refused_by_readers_and_writers(store: Store) -> None:
    store.start_run("r1", {}, [], {}, {})
    future = {**record_json(_record("c2")), "schema_version": SCHEMA_VERSION + 1}
    _insert_raw(store.path, "r1", "c2", json.dumps(future), version=SCHEMA_VERSION + 1)
    with pytest.raises(BenchError, match=f"schema version {SCHEMA_VERSION + 1}.*newer compression-bench"):
        store.records("r1")
    for opener in (open_store, read_store):
        with pytest.raises(BenchError, match="newer compression-bench"):
            opener(store.path)


def test_records_that_do_not_fit_their_type_cannot_be_made() -> None:
    with pytest.raises(ValueError, match="status 'weird'"):
        _record("c1", status="weird")
    with pytest.raises(ValueError, match="sizes, MACs and a timing"):
        dataclasses.replace(_record("c1"), timing=None)


def test_run_lookup_errors(store: Store) -> None:
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


def test_measured_lists_each_record_once_at_the_run_that_measured_it(store: Store) -> None:
    for run_id in ("r1", "r2"):
        store.start_run(run_id, {}, [], {}, {"commit": None})
    first = store.add_record("r1", _record("c1"))
    store.add_record("r1", _record("c2", status="failed"))
    store.reuse("r2", "c1", first)
    again = store.add_record("r2", _record("c2"))
    measured = store.measured()
    assert [(m.record_id, m.run_id, m.record.cell_id) for m in measured] == [
        (first, "r1", "c1"), (first + 1, "r1", "c2"), (again, "r2", "c2"),
    ]  # fmt: skip
    replaced = store.add_record("r2", _record("c2"))  # measured again in the same run: the first no longer counts
    assert [m.record_id for m in store.measured()] == [first, first + 1, replaced]
