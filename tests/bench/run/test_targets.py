"""One matrix on several targets: the host CPU and a device over SSH side by side, and a target that is down."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench.records import Record
from bench.store.database import read_store
from tests.bench.conftest import CliResult, run_main, tiny_run_args, write_fast_toml
from tests.sshd import LocalSshd, free_port

COMPRESSORS = ["none", "prune.unstructured:sparsity=0.9:execution=csr"]


def _toml_table(name: str, table: dict[str, object]) -> str:
    lines = [f"[targets.{name}]"] + [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def two_runs(local_sshd: LocalSshd, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CliResult, CliResult]:
    """The same matrix run twice on cpu, a device over ssh, and a device that does not answer."""
    directory = tmp_path_factory.mktemp("targets")
    ssh = local_sshd.target_table(python=sys.executable, workdir=str(directory / "remote"))
    down = {"kind": "ssh", "host": "127.0.0.1", "port": free_port(), "connect_timeout_s": 5}
    config = write_fast_toml(directory, "\n" + _toml_table("ssh-local", ssh) + _toml_table("down", down))
    store = directory / "results" / "bench.sqlite"
    argv = tiny_run_args(store, config, "--targets", "cpu,ssh-local,down", compressors=COMPRESSORS)
    return store, run_main(argv), run_main(argv)


def _records(store: Path) -> list[Record]:
    with read_store(store) as opened:
        return opened.records(opened.run().run_id)


def test_cells_run_on_each_target_and_a_dead_one_fails_with_its_reason(
    two_runs: tuple[Path, CliResult, CliResult],
) -> None:
    store, first, _ = two_runs
    assert first.code == 1, first.err  # failed cells make the exit status 1, not a crash
    assert "run " in first.out and "4 measured, 0 reused from the store, 2 failed, 0 skipped" in first.out
    records = _records(store)
    statuses = {(r.target, r.compressor): r.status for r in records}
    assert statuses == {
        ("cpu", "none"): "ok", ("ssh-local", "none"): "ok", ("down", "none"): "failed",
        ("cpu", "prune.unstructured"): "ok", ("ssh-local", "prune.unstructured"): "ok",
        ("down", "prune.unstructured"): "failed",
    }  # fmt: skip
    for record in records:
        if record.target == "down":
            assert record.error and record.error.startswith("down: ssh could not connect or log in (127.0.0.1):")
            assert "\n" not in record.error
        else:
            timing = getattr(record, "timing", None)
            assert timing is not None and timing.speedup_median > 0 and timing.thermal_before is not None
    # Both live targets are this machine, described by the worker each one ran.
    machines = {r.target: r.machine for r in records if r.ok}
    assert machines["cpu"]["hostname"] == machines["ssh-local"]["hostname"]


def test_report_puts_the_targets_side_by_side(two_runs: tuple[Path, CliResult, CliResult]) -> None:
    store, first, _ = two_runs
    places = next(line for line in first.out.splitlines() if "cpu ts t1 b1" in line)
    assert places.index("cpu ts t1 b1") < places.index("ssh-local ts t1 b1") < places.index("down ts t1 b1")
    said = " ".join(first.out.split())
    assert "failed on down ts t1 b1 (none, unstr 90% csr): down: ssh could not connect" in said
    report = next((store.parent / "runs").glob("*/report.md")).read_text()
    assert "## Targets" in report and "| ssh-local " in report
    assert "- failed: digits_cnn none on down t=1 b=1: down: ssh could not connect" in report


def test_rerun_reuses_finished_cells_and_retries_the_failed_ones(two_runs: tuple[Path, CliResult, CliResult]) -> None:
    _, _, second = two_runs
    assert second.code == 1
    assert "0 measured, 4 reused from the store, 2 failed, 0 skipped" in second.out
