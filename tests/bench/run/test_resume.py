"""Failures and resume: a failing cell, a killed run, and Ctrl-C / SIGTERM."""

from __future__ import annotations

import io
import re
import signal
import sqlite3
import time
from pathlib import Path

import pytest

import bench.run.runner
import compressors
from bench.config.run_config import load_config
from bench.records import Record
from bench.run.runner import run_matrix
from bench.store.database import read_store
from tests.bench.conftest import (
    count_records,
    run_main,
    run_subprocess,
    start_subprocess,
    stop,
    tiny_run_args,
    write_fast_toml,
)

CSR = "prune.unstructured:sparsity=0.9:execution=csr"


def _config(tmp_path: Path, store: Path, compressors: dict):
    return load_config(
        write_fast_toml(tmp_path),
        {
            "models": ["digits_cnn"],
            "compressors": compressors,
            "finetune_steps": 5,
            "timing": {"budget_s": 0.2},
            "layers": {"models": []},
            "store": store,
        },
    )


def _records(store: Path, run_id: str) -> list[Record]:
    with read_store(store) as opened:
        return opened.records(run_id)


def test_failing_cell_is_stored_and_the_run_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "bench.sqlite"
    config = _config(
        tmp_path, store, {"none": {}, "prune.unstructured": {"sparsity": 0.9, "execution": ["dense", "csr"]}}
    )
    real = bench.run.runner.measure_model_cell

    def failing(cell, *args, **kwargs):
        if dict(cell.params).get("execution") == "csr":
            raise RuntimeError("simulated kernel failure\nsecond line")
        return real(cell, *args, **kwargs)

    monkeypatch.setattr(bench.run.runner, "measure_model_cell", failing)
    stream = io.StringIO()
    outcome = run_matrix(config, stream)
    assert outcome.counts == {"ok": 2, "failed": 1}
    records = _records(store, outcome.run_id)
    assert len(records) == 3
    (failed,) = [r for r in records if r.status == "failed"]
    assert failed.params["execution"] == "csr"
    assert failed.error == "RuntimeError: simulated kernel failure"
    assert failed.traceback is not None and "simulated kernel failure" in failed.traceback
    assert all(r.status == "ok" and r.error is None for r in records if r is not failed)
    assert "failed" in stream.getvalue()
    with read_store(store) as opened:
        assert opened.run(outcome.run_id).status == "finished"

    monkeypatch.setattr(bench.run.runner, "measure_model_cell", real)
    again = run_matrix(config, io.StringIO())
    assert again.counts == {"ok": 1, "reused": 2}
    records = _records(store, again.run_id)
    assert [r.status for r in records] == ["ok"] * 3
    assert records[-1].params["execution"] == "csr"


def test_a_compressor_limit_is_a_skipped_cell_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "bench.sqlite"
    config = _config(tmp_path, store, {"none": {}, "prune.channel": {"macs_removed": 0.5}})
    real = bench.run.runner.measure_model_cell

    def limited(cell, *args, **kwargs):
        if cell.compressor == "prune.channel":
            raise compressors.CompressorLimit("prune", "torch-pruning cannot trace the channel shuffle (simulated)")
        return real(cell, *args, **kwargs)

    monkeypatch.setattr(bench.run.runner, "measure_model_cell", limited)
    outcome = run_matrix(config, io.StringIO())
    assert outcome.counts == {"ok": 1, "skipped": 1}
    (skipped,) = [r for r in _records(store, outcome.run_id) if r.status != "ok"]
    assert skipped.status == "skipped"
    assert (
        skipped.error
        == "prune.channel cannot prune digits_cnn: torch-pruning cannot trace the channel shuffle (simulated)"
    )
    assert skipped.traceback is None


def test_failed_cell_makes_the_cli_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(*args, **kwargs):
        raise ValueError("nope")

    monkeypatch.setattr(bench.run.runner, "measure_model_cell", failing)
    store = tmp_path / "bench.sqlite"
    result = run_main(tiny_run_args(store, write_fast_toml(tmp_path), compressors=["none"]))
    assert result.code == 1
    assert "0 measured, 0 reused from the store, 1 failed" in result.out
    assert "failed: ValueError: nope" in result.out or "ValueError: nope" in result.out


def _wait_for_records(store: Path, process, at_least: int, timeout: float = 150) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = count_records(store)
        if count >= at_least:
            return count
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"no {at_least} records in {store} after {timeout} s")


KILL_COMPRESSORS = ["none", "prune.unstructured:sparsity=0.5,0.9:execution=dense", "prune.channel:macs_removed=0.5,0.7"]
# A second's cool-down before each cell: digits_cnn cells take well under a second each, and without it the rest of
# the run can finish between the first record and the signal.
SECOND_PER_CELL = "\n[targets.cpu]\ncooldown_s = 1.0\n"


def test_killed_run_keeps_its_records_and_resumes(tmp_path: Path) -> None:
    store = tmp_path / "bench.sqlite"
    config = write_fast_toml(tmp_path, SECOND_PER_CELL)
    args = tiny_run_args(store, config, compressors=KILL_COMPRESSORS)
    args[args.index("--budget") + 1] = "0.5"
    process = start_subprocess(*args)
    try:
        _wait_for_records(store, process, 1)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        stop(process)
    assert process.returncode == -signal.SIGKILL
    stored = count_records(store)
    assert 1 <= stored < 5
    connection = sqlite3.connect(store)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = connection.execute("SELECT status, record_json FROM records").fetchall()
        (run_status,) = connection.execute("SELECT status FROM runs").fetchone()
    finally:
        connection.close()
    assert all(status == "ok" and '"samples_s"' in text for status, text in rows)
    assert run_status == "running"  # a killed process cannot mark its run

    again = run_subprocess(*args)
    assert again.returncode == 0, again.stderr
    match = re.search(r"(\d+) measured, (\d+) reused from the store, 0 failed", again.stdout)
    assert match, again.stdout
    measured, reused = int(match[1]), int(match[2])
    assert reused >= stored and measured + reused == 5
    assert count_records(store) == stored + measured


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_exits_130_and_marks_the_run(tmp_path: Path, signum: int) -> None:
    store = tmp_path / "bench.sqlite"
    args = tiny_run_args(store, write_fast_toml(tmp_path, SECOND_PER_CELL), compressors=KILL_COMPRESSORS)
    process = start_subprocess(*args)
    try:
        _wait_for_records(store, process, 1)
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
    finally:
        stop(process)
    assert process.returncode == 130, err
    assert "interrupted: every finished cell is in the store" in err
    assert "Traceback" not in err
    assert count_records(store) >= 1
    listing = run_main(["list", "runs", "--store", str(store)])
    assert listing.code == 0
    assert re.search(r"\binterrupted\s+digits_cnn", listing.out), listing.out


def test_a_measurement_that_does_not_fit_its_record_fails_its_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "bench.sqlite"
    config = _config(tmp_path, store, {"none": {}})
    real = bench.run.runner.measure_model_cell

    def without_timing(*args, **kwargs):
        fields = real(*args, **kwargs)
        del fields["timing"]
        return fields

    monkeypatch.setattr(bench.run.runner, "measure_model_cell", without_timing)
    outcome = run_matrix(config, io.StringIO())
    assert outcome.counts == {"failed": 1}
    (record,) = _records(store, outcome.run_id)
    assert (
        record.error == "the measurement does not fit a model record: an ok model record has sizes, MACs and a timing"
    )
