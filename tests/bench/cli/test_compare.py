"""`python -m bench compare` through `bench.cli.main.main`, on real stores and the committed reference export."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from bench.compare import Rules, compare_runs, from_export
from bench.records import Record, Sizes
from bench.store.database import open_store
from tests.bench.conftest import REPO, run_main
from tests.bench.record_factory import MACHINE, layers_record, model_record, sampled_timing

REFERENCE = REPO / "results" / "reference" / "x86_64-amd-epyc-2cpu-t1" / "records.json"
OTHER = {**MACHINE, "arch": "aarch64", "cpu_model": "Cortex-A76", "hostname": "pi"}


def _draw(seed: int, factor: float = 1.0) -> list[float]:
    return list(np.random.default_rng(seed).lognormal(np.log(1e-3 * factor), 0.03, 30))


def _speedups(seed: int, speedup: float) -> list[float]:
    return list(np.random.default_rng(seed).lognormal(np.log(speedup), 0.03, 30))


def _records(seed: int, *, slower: float = 1.0, speedup: float = 2.0, machine=MACHINE, csr: int = 8000) -> list[Record]:
    """Three model cells and a sweep; the first cell's latency `slower` times the base's, at `speedup`."""
    sizes = Sizes(params_total=1000, params_nonzero=100, dense_bytes=4000, csr_bytes=csr, gzip_bytes=3600)
    return [
        model_record(
            "prune.unstructured", {"sparsity": 0.9}, machine=machine, sizes=sizes,
            timing=sampled_timing(_draw(seed, slower), _speedups(seed + 1, speedup), reference_s=_draw(seed)),
        ),
        model_record("none", machine=machine, timing=sampled_timing(_draw(seed + 2), _speedups(seed + 3, 1.0))),
        model_record("quant.int8", machine=machine, timing=sampled_timing(_draw(seed + 4), _speedups(seed + 5, 3.0))),
        layers_record("cpu", {"sparsity": 0.9}, [1.0, 1.0], machine=machine),
    ]  # fmt: skip


def _store(path: Path, runs: dict[str, list[Record]]) -> Path:
    with open_store(path) as store:
        for index, (run_id, records) in enumerate(runs.items()):
            commit = {"commit": f"{index}" * 40, "dirty": False}
            store.start_run(run_id, {"models": ["m"]}, [], {}, commit)
            for record in records:
                store.add_record(run_id, record)
            store.finish_run(run_id, "finished")
    return path


@pytest.fixture
def store(tmp_path: Path) -> Path:
    # Elapsed times differ: each run holds its own records, not one record linked twice.
    cand = [dataclasses.replace(r, elapsed_s=2.0) for r in _records(100, slower=1.25, csr=8800)]
    return _store(tmp_path / "bench.sqlite", {"base": _records(200), "cand": cand})


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def test_the_reference_export_against_itself_is_all_unchanged():
    result = run_main(["compare", str(REFERENCE), str(REFERENCE)])
    assert result.code == 0, result.err
    assert "93 cells: 93 unchanged\nBASE " in result.out
    assert "PASS" in result.out
    assert result.err == ""


def test_the_reference_table_fits_120_columns():
    result = run_main(["compare", str(REFERENCE), str(REFERENCE), "--all"])
    assert result.code == 0
    lines = result.out.splitlines()
    assert len(lines) > 93
    assert max(len(line) for line in lines) <= 120


def test_a_regression_fails_and_is_listed_first(store: Path):
    result = run_main(["compare", "base", "cand", "--store", str(store)])
    assert result.code == 1, result.err
    table = result.out.splitlines()
    first = next(line for line in table if line.startswith("m | "))
    assert "regressed" in first and first.startswith("m | unstr 90%  ")
    assert re.search(r"  1\.2\d \[1\.2\d, 1\.[23]\d\]  ", first), first
    assert "csr +10.0%" in result.out
    assert "3 unchanged cells" in result.out
    assert "BASE base (commit 0000000) vs CAND cand (commit 1111111)" in result.out
    assert "FAIL: 1 cell(s) regressed in latency, size" in result.out


@pytest.mark.parametrize(("fail_on", "code"), [("speedup,accuracy", 0), ("latency", 1), ("size", 1), ("accuracy", 0)])
def test_fail_on_picks_the_metrics_that_fail(store: Path, fail_on: str, code: int):
    result = run_main(["compare", "base", "cand", "--store", str(store), "--fail-on", fail_on])
    assert result.code == code, result.out


def test_all_lists_unchanged_cells(store: Path):
    result = run_main(["compare", "base", "cand", "--store", str(store), "--all"])
    assert result.out.count("unchanged ") >= 3
    assert "not shown" not in result.out


def test_a_store_path_means_its_newest_run_and_path_at_run_id_another(store: Path, tmp_path: Path):
    newest = run_main(["compare", f"{store}@base", str(store)])
    assert newest.code == 1 and "vs CAND cand" in newest.out
    same = run_main(["compare", f"{store}@base", f"{store}@base"])
    assert same.code == 0 and "unchanged" in same.out


def test_a_store_and_an_export_compare(store: Path, tmp_path: Path):
    exported = tmp_path / "base.json"
    assert run_main(["export", "base", "--store", str(store), "--format", "json", "--output", str(exported)]).code == 0
    result = run_main(["compare", str(exported), f"{store}@cand"])
    assert result.code == 1
    assert "vs CAND cand" in result.out


def test_markdown_has_a_headline_the_changed_cells_and_every_cell_folded(store: Path, tmp_path: Path):
    path = tmp_path / "summary.md"
    result = run_main(["compare", "base", "cand", "--store", str(store), "--markdown", str(path)])
    assert result.code == 1
    text = path.read_text()
    assert text.startswith("## :x: Benchmark comparison: FAIL")
    changed, folded = text.split("<details>")
    assert "### Changed cells" in changed and "regressed" in changed
    assert "m \\| prune.unstructured sparsity=0.9 \\| cpu t=1 b=1" in changed
    assert "m \\| none" not in changed
    assert "m \\| none \\| cpu t=1 b=1" in folded and "</details>" in folded


def test_markdown_of_a_pass_says_so(tmp_path: Path):
    path = tmp_path / "summary.md"
    assert run_main(["compare", str(REFERENCE), str(REFERENCE), "--markdown", str(path)]).code == 0
    text = path.read_text()
    assert text.startswith("## :white_check_mark: Benchmark comparison: PASS")
    assert "All 93 cells (93 unchanged)" in text


def test_other_machines_warn_once_and_compare_speedups_only(tmp_path: Path):
    path = _store(tmp_path / "b.sqlite", {"base": _records(300), "cand": _records(400, slower=3.0, machine=OTHER)})
    result = run_main(["compare", "base", "cand", "--store", str(path)])
    warnings = [line for line in result.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and len(result.err.splitlines()) == 1
    assert "x86_64 Test CPU on h" in warnings[0] and "aarch64 Cortex-A76 on pi" in warnings[0]
    assert "n/a (other machine)" in run_main(["compare", "base", "cand", "--store", str(path), "--all"]).out
    assert result.code == 0  # three times slower, but on another machine: only the speedups count


def test_other_machines_still_fail_on_a_speedup_drop(tmp_path: Path):
    cand = _records(400, speedup=1.5, machine=OTHER)
    path = _store(tmp_path / "b.sqlite", {"base": _records(300), "cand": cand})
    result = run_main(["compare", "base", "cand", "--store", str(path)])
    assert result.code == 1
    assert "FAIL: 1 cell(s) regressed in speedup" in result.out


def test_strict_machine_refuses_other_machines(tmp_path: Path):
    path = _store(tmp_path / "b.sqlite", {"base": _records(300), "cand": _records(400, machine=OTHER)})
    result = run_main(["compare", "base", "cand", "--store", str(path), "--strict-machine"])
    assert result.code == 2
    assert "--strict-machine" in _one_error_line(result.err)


def test_the_api_names_regressions_and_the_machine_note():
    side = from_export(REFERENCE, "BASE")
    comparison = compare_runs(side, side, Rules())
    assert comparison.regressions() == [] and comparison.machine_note is None
    assert comparison.counts()["unchanged"] == 93


def _unchanged(path: Path, argv: list[str]) -> str:
    before = path.read_bytes()
    result = run_main(argv)
    assert result.code == 2, result.out
    assert path.read_bytes() == before
    return _one_error_line(result.err)


def test_an_unknown_run_id_names_the_store_and_how_to_list_runs(store: Path):
    line = _unchanged(store, ["compare", "nope", "cand", "--store", str(store)])
    assert "nope" in line and str(store) in line and "list runs" in line


def test_an_unknown_run_after_at_is_refused(store: Path):
    line = _unchanged(store, ["compare", f"{store}@nope", "cand", "--store", str(store)])
    assert "unknown run 'nope'" in line


def test_a_store_that_is_not_sqlite_is_refused(tmp_path: Path, store: Path):
    fake = tmp_path / "fake.sqlite"
    fake.write_bytes(b"not a database at all, just bytes\n" * 10)
    line = _unchanged(fake, ["compare", str(fake), "cand", "--store", str(store)])
    assert "not a SQLite database" in line and line.startswith("error: BASE:")


def test_a_json_file_that_is_not_an_export_names_what_one_holds(tmp_path: Path, store: Path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"benchmarks": []}))
    line = _unchanged(other, ["compare", "base", str(other), "--store", str(store)])
    assert line.startswith("error: CAND:") and '"run"' in line and '"records"' in line and "export" in line


def test_json_that_does_not_parse_is_refused(tmp_path: Path, store: Path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"run": ')
    line = _unchanged(broken, ["compare", str(broken), "base", "--store", str(store)])
    assert "is not JSON" in line


def test_runs_with_no_common_cells_are_refused(tmp_path: Path):
    others = [model_record("prune.channel", {"macs_removed": 0.5})]
    path = _store(tmp_path / "b.sqlite", {"base": _records(500), "other": others})
    line = _unchanged(path, ["compare", "base", "other", "--store", str(path)])
    assert "no cell in common" in line


def test_a_missing_file_is_named(tmp_path: Path, store: Path):
    missing = tmp_path / "nowhere" / "base.json"
    line = _unchanged(store, ["compare", str(missing), "cand", "--store", str(store)])
    assert "no such file" in line and str(missing) in line


def test_an_invalid_fail_on_item_names_the_accepted_ones(store: Path):
    line = _unchanged(store, ["compare", "base", "cand", "--store", str(store), "--fail-on", "latency,speed"])
    assert "'speed'" in line and "latency, speedup, accuracy, size" in line


def test_an_invalid_threshold_is_refused(store: Path):
    line = _unchanged(store, ["compare", "base", "cand", "--store", str(store), "--threshold", "five"])
    assert "--threshold" in line
