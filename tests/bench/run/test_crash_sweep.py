"""Runs killed with SIGKILL: the next run marks them interrupted and removes what they left, and only that."""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bench.run.scratch import OWNER_FILE, Owner, scratch_folder, sweep_dead_runs
from bench.store.database import open_store
from tests.bench.conftest import (
    REPO,
    SUBPROCESS_ENV,
    bench_command,
    count_records,
    stop,
    write_fast_toml,
)

# As in test_resume: a second's cool-down per cell keeps the run going long enough for the signal to land mid-run.
SECOND_PER_CELL = "\n[targets.cpu]\ncooldown_s = 1.0\n"
COMPRESSORS = ["none", "prune.unstructured:sparsity=0.5,0.9:execution=dense", "prune.channel:macs_removed=0.5,0.7"]


def _run_args(store: Path, config: Path) -> list[str]:
    return [
        "run", "--config", str(config), "--models", "digits_cnn", "--compressors", *COMPRESSORS, "--budget", "0.3",
        "--finetune-steps", "0", "--no-layers", "--store", str(store),
    ]  # fmt: skip


@pytest.fixture
def live_process() -> Iterator[psutil.Process]:
    """A process that outlives the test's sweeps, to own leftovers that must survive."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        yield psutil.Process(process.pid)
    finally:
        process.kill()
        process.wait()


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _fake_scratch(parent: Path, name: str, pid: int, create_time: float, hostname: str | None = None) -> Path:
    folder = parent / f"bench-{name}"
    folder.mkdir()
    (folder / "candidate-1.pt").write_bytes(b"x" * 1000)
    owner = {"pid": pid, "create_time": create_time, "hostname": hostname or platform.node(), "run_id": name}
    (folder / OWNER_FILE).write_text(json.dumps(owner))
    return folder


def _worker_log(parent: Path, pid: int, written: float | None = None, tag: str = "abc123") -> Path:
    log = parent / f"compression-bench-worker-{pid}-{tag}.log"
    log.write_text("worker stderr\n")
    if written is not None:
        os.utime(log, (written, written))
    return log


def _wait_for(condition, process: subprocess.Popen[str], timeout: float = 150) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"not reached in {timeout} s")


def _run_statuses(store: Path) -> dict[str, str]:
    connection = sqlite3.connect(store)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return dict(connection.execute("SELECT run_id, status FROM runs"))
    finally:
        connection.close()


def test_killed_run_is_marked_interrupted_and_its_files_removed(tmp_path: Path, live_process: psutil.Process) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**SUBPROCESS_ENV, "TMPDIR": str(temp)}
    store = tmp_path / "bench.sqlite"
    args = bench_command(*_run_args(store, write_fast_toml(tmp_path, SECOND_PER_CELL)))
    process = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # A worker log exists once the first cell is being timed; the run is killed after a cell is stored.
        _wait_for(
            lambda: count_records(store) >= 1 and any(temp.glob(f"compression-bench-worker-{process.pid}-*.log")),
            process,
        )
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        stop(process)
    stored = count_records(store)
    (killed_run,) = _run_statuses(store)
    (killed_folder,) = temp.glob("bench-*")
    assert json.loads((killed_folder / OWNER_FILE).read_text())["pid"] == process.pid
    assert any(killed_folder.rglob("*.pt"))  # baseline and candidate TorchScript files
    assert list(temp.glob(f"compression-bench-worker-{process.pid}-*.log"))
    started = live_process.create_time()
    live_folder = _fake_scratch(temp, "live", live_process.pid, started)
    live_log = _worker_log(temp, live_process.pid)
    recycled_folder = _fake_scratch(temp, "recycled", live_process.pid, started - 1000)

    again = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert again.returncode == 0, again.stderr

    assert re.search(
        r"^swept 2 dead runs: 1 marked interrupted, removed [\d.]+ MB of temporary files", again.stderr, re.MULTILINE
    ), again.stderr
    statuses = _run_statuses(store)
    assert statuses.pop(killed_run) == "interrupted"
    assert list(statuses.values()) == ["finished"]
    assert not killed_folder.exists() and not recycled_folder.exists()
    assert not list(temp.glob(f"compression-bench-worker-{process.pid}-*.log"))
    assert live_folder.exists() and live_log.exists()
    assert sorted(p.name for p in temp.glob("bench-*")) == ["bench-live"]  # the second run removed its own folder
    match = re.search(r"(\d+) measured, (\d+) reused from the store, 0 failed", again.stdout)
    assert match, again.stdout
    assert int(match[2]) >= stored and int(match[1]) + int(match[2]) == 5


def test_sweep_removes_only_what_dead_owners_left(tmp_path: Path, live_process: psutil.Process) -> None:
    started = live_process.create_time()
    dead = _dead_pid()
    kept = [
        _fake_scratch(tmp_path, "live", live_process.pid, started),
        _fake_scratch(tmp_path, "elsewhere", dead, started, hostname="another-host"),
        _worker_log(tmp_path, live_process.pid),
    ]
    unowned = tmp_path / "bench-no-owner-file"
    unowned.mkdir()
    kept.append(unowned)
    removed = [
        _fake_scratch(tmp_path, "dead", dead, started),
        _fake_scratch(tmp_path, "recycled", live_process.pid, started - 1000),
        _worker_log(tmp_path, dead),
        # The live process has the log's pid, but started after the log was last written: the pid was recycled.
        _worker_log(tmp_path, live_process.pid, written=started - 1000, tag="old"),
    ]

    store = open_store(tmp_path / "bench.sqlite")
    try:
        owners = {
            "live": {"pid": live_process.pid, "create_time": started, "hostname": platform.node()},
            "recycled": {"pid": live_process.pid, "create_time": started - 1000, "hostname": platform.node()},
            "dead": {"pid": dead, "create_time": started, "hostname": platform.node()},
            "elsewhere": {"pid": dead, "create_time": started, "hostname": "another-host"},
            "unrecorded": None,
        }
        for run_id, owner in owners.items():
            store.start_run(run_id, {}, [], {}, {}, owner)
        report = sweep_dead_runs(store, tmp_path)
        statuses = {run.run_id: run.status for run in store.runs()}
    finally:
        store.close()

    assert statuses == {
        "live": "running",
        "recycled": "interrupted",
        "dead": "interrupted",
        "elsewhere": "running",
        "unrecorded": "running",
    }
    assert sorted(report.interrupted) == ["dead", "recycled"]
    assert all(path.exists() for path in kept)
    assert not any(path.exists() for path in removed)
    assert (report.folders, report.logs) == (2, 2)
    assert report.removed_bytes >= 2000
    assert report.line() is not None and report.line().startswith("swept 2 dead runs: marked interrupted, removed")


def test_nothing_to_sweep_says_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path / "bench.sqlite")
    try:
        assert sweep_dead_runs(store, tmp_path).line() is None
    finally:
        store.close()


def test_scratch_folder_names_its_owner_and_is_removed_after(tmp_path: Path) -> None:
    owner = Owner.current("20260101-000000-abcd")
    with scratch_folder(owner, tmp_path) as folder:
        assert folder.name == "bench-20260101-000000-abcd"
        assert json.loads((folder / OWNER_FILE).read_text()) == owner.to_json()
        assert owner.pid == os.getpid() and owner.create_time == psutil.Process().create_time()
        store = open_store(tmp_path / "bench.sqlite")
        try:
            assert sweep_dead_runs(store, tmp_path).line() is None  # its own owner is alive
        finally:
            store.close()
        assert folder.exists()
    assert not folder.exists()


def test_store_made_before_owner_columns_gets_them(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    connection = sqlite3.connect(path)
    connection.executescript(
        "CREATE TABLE runs (run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL,"
        " config_json TEXT NOT NULL, cells_json TEXT NOT NULL, host_json TEXT NOT NULL, commit_json TEXT NOT NULL);"
        "INSERT INTO runs VALUES ('old', '2025-01-01T00:00:00+00:00', NULL, 'running', '{}', '[]', '{}', '{}');"
        "CREATE TABLE records (record_id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL,"
        " cell_id TEXT NOT NULL, machine_id TEXT NOT NULL, status TEXT NOT NULL, schema_version INTEGER NOT NULL,"
        " created_at TEXT NOT NULL,"
        " record_json TEXT NOT NULL);"
        "CREATE TABLE run_records (run_id TEXT NOT NULL, cell_id TEXT NOT NULL, record_id INTEGER NOT NULL,"
        " PRIMARY KEY (run_id, cell_id));"
    )
    connection.commit()
    connection.close()
    store = open_store(path)
    try:
        store.start_run("new", {}, [], {}, {}, {"pid": 1, "create_time": 2.5, "hostname": "h"})
        assert store.running_runs() == [
            {"run_id": "old", "pid": None, "create_time": None, "hostname": None},
            {"run_id": "new", "pid": 1, "create_time": 2.5, "hostname": "h"},
        ]
        assert store.mark_interrupted("new") and not store.mark_interrupted("new")
    finally:
        store.close()
    open_store(path).close()  # a second open finds the columns in place
