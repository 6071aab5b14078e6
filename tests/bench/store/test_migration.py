"""A store written by the previous schema (version 1, committed under tests/fixtures) read through every verb.

The fixture holds three runs of digits_cnn: model and layer cells on cpu, cells skipped on cuda (no GPU), a
run that reused every cell, and a failed cell on an unreachable ssh target.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from bench.records import SCHEMA_VERSION, LayersRecord, ModelRecord, load_record
from bench.store.database import open_store, read_store
from tests.bench.conftest import run_main
from tests.bench.store.test_files import FIXTURE, _digest

# The export of a reference run written by version 1 of the records (49 cells, before thermal readings).
REFERENCE = Path(__file__).resolve().parents[2] / "fixtures" / "records-v1.json"
RUNS = ["20261201-075040-29f8", "20261201-075110-7f53", "20261201-075116-8f8d"]


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    path = tmp_path / "store" / "bench.sqlite"
    path.parent.mkdir()
    shutil.copyfile(FIXTURE, path)
    return path


def test_the_fixture_is_a_version_1_store() -> None:
    db = sqlite3.connect(f"file:{FIXTURE}?immutable=1", uri=True)
    versions = {row[0] for row in db.execute("SELECT DISTINCT schema_version FROM records")}
    assert versions == {1} and db.execute("PRAGMA application_id").fetchone()[0] == 0
    db.close()


def test_every_old_record_is_read_as_the_newest_type(old_store: Path) -> None:
    with read_store(old_store) as store:
        records = store.records(RUNS[0])
        assert not store.unreadable
    assert len(records) == 19
    ok = [r for r in records if r.ok]
    assert {type(r) for r in ok} == {ModelRecord, LayersRecord} and all(r.target == "cpu" for r in ok)
    assert all(r.schema_version == SCHEMA_VERSION for r in records)
    model = next(r for r in ok if isinstance(r, ModelRecord) and r.compressor == "chain")
    assert model.timing and model.sizes and model.macs and model.accuracy and len(model.stage_sizes) == 2
    assert model.sizes.huffman_bytes and model.sizes.huffman_bytes < model.sizes.dense_bytes
    assert len(model.timing.samples_s) == model.timing.rounds
    layers = next(r for r in ok if isinstance(r, LayersRecord))
    assert layers.speedup_median == pytest.approx(layers.dense_s / layers.sparse_s)
    assert all(layer.sparse_median_s > 0 for layer in layers.layers)


def test_old_records_get_their_test_set_size_from_the_note_the_suite_wrote(old_store: Path) -> None:
    with read_store(old_store) as store:
        models = [r for r in store.records(RUNS[0]) if isinstance(r, ModelRecord) and r.ok and r.accuracy]
    trained = [r.accuracy for r in models if r.accuracy and r.accuracy.top1 is not None]
    untrained = [r.accuracy for r in models if r.accuracy and r.accuracy.top1 is None]
    assert trained and all(a.images and a.note and f"({a.images} images)" in a.note for a in trained)
    assert all(a.standard_error and 0 < a.standard_error < 0.05 for a in trained)
    assert all(a.images is None and a.standard_error is None for a in untrained)


def test_a_finished_old_record_answers_its_cell(old_store: Path) -> None:
    with read_store(old_store) as store:
        chain = next(r for r in store.records(RUNS[0]) if r.ok and r.compressor == "chain")
        assert store.finished(chain.cell_id, chain.machine_id) is not None


@pytest.mark.parametrize("run_id", RUNS)
def test_report_and_export_read_every_old_run(old_store: Path, tmp_path: Path, run_id: str) -> None:
    before = _digest(old_store.parent)
    report = run_main(["report", run_id, "--store", str(old_store), "--output", str(tmp_path / "report")])
    assert report.code == 0, report.err
    assert "digits_cnn" in report.out and (tmp_path / "report" / "report.md").is_file()
    exported = run_main(["export", run_id, "--format", "json", "--store", str(old_store)])
    assert exported.code == 0, exported.err
    data = json.loads(exported.out)
    assert data["run"]["run_id"] == run_id and all(r["schema_version"] == SCHEMA_VERSION for r in data["records"])
    rows = list(csv.DictReader(io.StringIO(run_main(["export", run_id, "--store", str(old_store)]).out)))
    assert rows and {row["cell_id"] for row in rows} == {r["cell_id"] for r in data["records"]}
    assert _digest(old_store.parent) == before


def test_list_runs_of_an_old_store(old_store: Path) -> None:
    listing = run_main(["list", "runs", "--store", str(old_store)])
    assert listing.code == 0 and all(run_id in listing.out for run_id in RUNS)


def test_a_run_on_an_old_store_marks_it_and_keeps_the_old_records(old_store: Path) -> None:
    result = run_main([
        "run", "--models", "digits_cnn", "--compressors", "none", "--no-layers", "--finetune-steps", "0",
        "--engines", "torchscript",
        "--budget", "0.2", "--store", str(old_store),
    ])  # fmt: skip
    assert result.code == 0, result.err
    with open_store(old_store) as store:
        runs = store.runs()
        assert [r.run_id for r in runs[:3]] == RUNS and len(runs) == 4
        assert len(store.records(RUNS[0])) == 19 and not store.unreadable
        (new,) = store.records(runs[-1].run_id)
    assert new.ok and new.schema_version == SCHEMA_VERSION
    db = sqlite3.connect(old_store)
    assert db.execute("PRAGMA application_id").fetchone()[0] != 0
    assert {row[0] for row in db.execute("SELECT DISTINCT schema_version FROM records")} >= {1}
    db.close()


def test_the_committed_reference_export_loads() -> None:
    data = json.loads(REFERENCE.read_text())
    records = [load_record(record) for record in data["records"]]
    assert len(records) == 49 and all(r.ok for r in records)
    # written before the worker read thermal zones: unknown, not "not throttled"
    assert all(r.timing is None or r.timing.throttled is None for r in records if isinstance(r, ModelRecord))
