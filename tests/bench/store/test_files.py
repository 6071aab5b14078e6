"""Files a store path may point at: none, empty, truncated, not SQLite, another program's database, a newer
suite's store, a read-only folder. Each is read without creating or changing a file, or refused in one line."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.store._sqlite import APPLICATION_ID, LAYOUT_VERSION
from bench.store.database import open_store, read_store
from tests.bench.conftest import run_main
from tests.bench.record_factory import model_record

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "store-v1.sqlite"
READ_VERBS = (["list", "runs"], ["report"], ["export", "--format", "json"], ["export", "--format", "csv"])


def _digest(folder: Path) -> dict[str, str]:
    """Every file under `folder` with a digest of its bytes: what 'nothing created or changed' compares."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _store_with_a_run(path: Path) -> Path:
    with open_store(path) as store:
        store.start_run("r1", {"models": ["m"]}, [], {}, {})
        store.add_record("r1", model_record())
        store.finish_run("r1", "finished")
    return path


def _foreign(path: Path, application_id: int = 0) -> Path:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO customers (name) VALUES ('ada')")
    db.execute(f"PRAGMA application_id = {application_id}")
    db.commit()
    db.close()
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"this is not a database" * 100), "is not a SQLite database"),
        (lambda p: p.write_bytes(FIXTURE.read_bytes()[:60]), "truncated"),
        (lambda p: p.write_bytes(FIXTURE.read_bytes()[:8192]), "cannot"),
        (lambda p: _foreign(p), "another program's SQLite database \\(tables customers\\)"),
        (lambda p: _foreign(p, application_id=0x5EED), "belongs to another program"),
    ],
    ids=["text", "truncated-header", "truncated-pages", "foreign-tables", "foreign-application-id"],
)  # fmt: skip
def test_files_that_are_not_our_stores_are_refused_by_every_verb_and_left_alone(
    tmp_path: Path, make, message: str
) -> None:
    path = tmp_path / "data.sqlite"
    make(path)
    before = _digest(tmp_path)
    for opener in (open_store, read_store):
        with pytest.raises(BenchError, match=message):
            opener(path).records("r1")
    for verb in READ_VERBS:
        result = run_main([*verb, "--store", str(path)])
        assert result.code == 2, (verb, result)
        assert result.err.count("\n") == 1 and result.err.startswith("error: ")
    assert _digest(tmp_path) == before


def test_a_newer_suites_store_is_refused_by_every_verb_run_included(tmp_path: Path) -> None:
    path = _store_with_a_run(tmp_path / "bench.sqlite")
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {LAYOUT_VERSION + 1}")
    db.commit()
    db.close()
    before = _digest(tmp_path)
    run = ["run", "--models", "digits_cnn", "--compressors", "none", "--no-layers", "--finetune-steps", "0"]
    for verb in [*READ_VERBS, run]:
        result = run_main([*verb, "--store", str(path)])
        assert result.code == 2 and "newer compression-bench" in result.err, (verb, result)
    assert _digest(tmp_path) == before


def test_a_store_is_marked_as_ours(tmp_path: Path) -> None:
    path = _store_with_a_run(tmp_path / "bench.sqlite")
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert db.execute("PRAGMA user_version").fetchone()[0] == LAYOUT_VERSION
    # at rest the store is one file in rollback-journal mode, which readers read without making -wal/-shm files
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    db.close()


def test_read_verbs_create_nothing_where_there_is_no_store(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "bench.sqlite"
    assert run_main(["list", "runs", "--store", str(path)]).code == 0
    for verb in READ_VERBS[1:]:
        result = run_main([*verb, "--store", str(path)])
        assert result.code == 2 and "no store at" in result.err
    assert list(tmp_path.iterdir()) == []


def test_an_empty_file_has_no_runs_and_stays_empty(tmp_path: Path) -> None:
    path = tmp_path / "bench.sqlite"
    path.touch()
    assert "run" in run_main(["list", "runs", "--store", str(path)]).out
    result = run_main(["report", "--store", str(path)])
    assert result.code == 2 and "no runs yet" in result.err
    assert path.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["bench.sqlite"]


def test_read_verbs_change_nothing_beside_a_store(tmp_path: Path) -> None:
    path = _store_with_a_run(tmp_path / "bench.sqlite")
    before = _digest(tmp_path)
    for verb in (["list", "runs"], ["export", "--format", "json"], ["export", "--format", "csv"]):
        assert run_main([*verb, "--store", str(path)]).code == 0
    assert _digest(tmp_path) == before


def test_report_of_a_run_without_records_says_so(tmp_path: Path) -> None:
    path = tmp_path / "bench.sqlite"
    with open_store(path) as store:
        store.start_run("r1", {"models": ["m"]}, [], {}, {})
        store.finish_run("r1", "interrupted")
    result = run_main(["report", "r1", "--store", str(path)])
    assert result.code == 2 and "run r1 has no records (interrupted before its first cell finished)" in result.err


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder holding a store, mounted read-only: even root cannot write there."""
    source, mounted = tmp_path / "source", tmp_path / "ro"
    source.mkdir()
    mounted.mkdir()
    _store_with_a_run(source / "bench.sqlite")
    bind = subprocess.run(["mount", "--bind", str(source), str(mounted)], capture_output=True, check=False)
    if bind.returncode != 0:
        pytest.skip(f"a read-only bind mount needs root and mount rights here: {bind.stderr.decode().strip()}")
    try:
        remount = subprocess.run(["mount", "-o", "remount,bind,ro", str(mounted)], capture_output=True, check=False)
        if remount.returncode != 0:
            pytest.skip(f"cannot remount read-only: {remount.stderr.decode().strip()}")
        yield mounted
    finally:
        subprocess.run(["umount", str(mounted)], check=False)


def test_read_verbs_work_in_a_read_only_folder(read_only_folder: Path) -> None:
    path = read_only_folder / "bench.sqlite"
    listing = run_main(["list", "runs", "--store", str(path)])
    assert listing.code == 0 and "r1" in listing.out
    exported = run_main(["export", "--format", "json", "--store", str(path)])
    assert exported.code == 0 and '"run_id": "r1"' in exported.out
    report = run_main(["report", "--store", str(path)])
    assert report.code == 0 and "\nm\n" in report.out
    assert "is not writable, so no report file is written; give --output DIR" in report.err
    written = run_main(["run", "--models", "digits_cnn", "--compressors", "none", "--store", str(path)])
    assert written.code == 2 and written.err.startswith("error: --store: cannot") and written.err.count("\n") == 1


def test_two_writers_share_a_store_and_the_last_to_close_leaves_one_file(tmp_path: Path) -> None:
    path = tmp_path / "bench.sqlite"
    first, second = open_store(path), open_store(path)
    first.start_run("r1", {}, [], {}, {})
    first.close()  # returns at once although `second` keeps the store in WAL mode
    second.start_run("r2", {}, [], {}, {})
    second.close()
    with read_store(path) as reader:
        assert [run.run_id for run in reader.runs()] == ["r1", "r2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.sqlite"]
