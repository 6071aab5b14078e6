"""Merging stores: every run and record kept, links remapped, idempotent, all or nothing, shards reassembled."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bench.errors import BenchError
from bench.records import SCHEMA_VERSION, Record
from bench.store._sqlite import LAYOUT_VERSION
from bench.store.database import open_store, read_store
from bench.store.merge import merge_stores
from tests.bench.conftest import run_main, run_subprocess
from tests.bench.record_factory import model_record

COMMIT = {"commit": "abc123", "dirty": False}
HOST = {"hostname": "runner"}


def _write_run(
    path: Path, run_id: str, records: list[Record], *, config: dict[str, Any] | None = None,
    reused: tuple[tuple[str, int], ...] = (), status: str = "finished", commit: dict[str, Any] = COMMIT,
    positions: list[int] | None = None,
) -> list[int]:  # fmt: skip
    """A run written by the real store: `records` measured, `reused` (cell, record id) linked; their new ids."""
    places = positions or list(range(len(records)))
    cells = [{"id": r.cell_id, "position": place} for r, place in zip(records, places, strict=True)]
    with open_store(path) as store:
        store.start_run(run_id, config or {"models": ["m"]}, cells, HOST, commit)
        ids = [store.add_record(run_id, record) for record in records]
        for cell_id, record_id in reused:
            store.reuse(run_id, cell_id, record_id)
        if status != "running":
            store.finish_run(run_id, status)
    return ids


def _shard_config(index: int, count: int, sizes: list[int] | None = None, matrix: str = "digest1") -> dict[str, Any]:
    shard = {"index": index, "count": count, "matrix": matrix, "sizes": sizes or [1] * count}
    return {"models": ["m"], "store": f"s{index}.sqlite", "shard": shard}


def _contents(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Run id -> its (cell, record JSON) links, read back through the real store."""
    with read_store(path) as store:
        return {run.run_id: [(r.cell_id, r.compressor) for r in store.records(run.run_id)] for run in store.runs()}


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture
def two_stores(tmp_path: Path) -> tuple[Path, Path]:
    """Store A: r1 measures two cells, r2 reuses one of them and measures a third. Store B: r3 with one cell."""
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    first, _ = _write_run(a, "r1", [model_record("none"), model_record("prune.channel", {"macs_removed": 0.5})])
    _write_run(a, "r2", [model_record("quant.int8")], reused=((model_record("none").cell_id, first),))
    _write_run(b, "r3", [model_record("lowrank.svd", {"rank_ratio": 0.25}, status="failed")])
    return a, b


def test_merge_keeps_every_run_record_and_reused_link(tmp_path: Path, two_stores: tuple[Path, Path]) -> None:
    a, b = two_stores
    before = _files(tmp_path)
    into = tmp_path / "out" / "m.sqlite"
    into.parent.mkdir()
    outcome = merge_stores([b, a], into)
    assert (outcome.runs_added, outcome.records_added) == (3, 4)
    merged, sources = _contents(into), {**_contents(a), **_contents(b)}
    assert merged == sources
    with read_store(into) as store, read_store(a) as original:
        runs = store.runs()
        assert sorted(r.run_id for r in runs) == ["r1", "r2", "r3"]
        assert [r.started_at for r in runs] == sorted(r.started_at for r in runs)
        for run_id in ("r1", "r2"):
            assert store.run(run_id) == original.run(run_id)  # host, commit, config, status, times
            assert store.records(run_id) == original.records(run_id)
        # r2's reused cell still answers with r1's record, under its new id
        links = store.select("SELECT run_id, record_id FROM run_records ORDER BY run_id")
        by_run = {}
        for run_id, record_id in links:
            by_run.setdefault(run_id, set()).add(record_id)
        assert len(by_run["r1"] & by_run["r2"]) == 1
        assert store.select("SELECT COUNT(*) FROM records")[0][0] == 4
    assert _files(tmp_path) == before  # the sources are untouched
    assert sorted(p.name for p in into.parent.iterdir()) == ["m.sqlite"]  # no temporary file left beside it


def test_merging_again_changes_nothing(tmp_path: Path, two_stores: tuple[Path, Path]) -> None:
    into = tmp_path / "m.sqlite"
    merge_stores(list(two_stores), into)
    first = _contents(into)
    again = merge_stores(list(two_stores), into)
    assert (again.runs_added, again.records_added) == (0, 0)
    assert (again.runs_present, again.records_present) == (3, 4)
    assert _contents(into) == first
    with read_store(into) as store:
        assert store.select("SELECT COUNT(*) FROM records")[0][0] == 4


def test_merge_adds_to_an_existing_store(tmp_path: Path, two_stores: tuple[Path, Path]) -> None:
    into = tmp_path / "m.sqlite"
    _write_run(into, "r0", [model_record("quant.binary")])
    merge_stores([two_stores[1]], into)
    merge_stores([two_stores[0]], into)
    assert sorted(_contents(into)) == ["r0", "r1", "r2", "r3"]
    with open_store(into) as store:  # still a store the runner writes to
        assert store.finished(model_record("none").cell_id, model_record("none").machine_id) is not None


def test_same_run_id_with_other_contents_is_refused_leaving_the_target_as_it_was(
    tmp_path: Path, two_stores: tuple[Path, Path]
) -> None:
    into = tmp_path / "m.sqlite"
    merge_stores([two_stores[1]], into)
    other = tmp_path / "other.sqlite"
    _write_run(other, "r3", [model_record("lowrank.svd", {"rank_ratio": 0.25})])  # ok this time, not failed
    before = into.read_bytes()
    with pytest.raises(BenchError, match="run r3 of .* is already in .* with other contents"):
        merge_stores([two_stores[0], other], into)
    assert into.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.sqlite", "b.sqlite", "m.sqlite", "other.sqlite"]


def _shards(tmp_path: Path, count: int = 2, present: tuple[int, ...] = (1, 2), **config: Any) -> list[Path]:
    """Shard runs of one matrix, one store each; shard K measures cell K."""
    compressors = ["none", "quant.int8", "quant.binary"]
    paths = []
    for index in present:
        path = tmp_path / f"s{index}.sqlite"
        _write_run(
            path, f"shard{index}", [model_record(compressors[index - 1])], config=_shard_config(index, count, **config)
        )
        paths.append(path)
    return paths


def test_shards_become_one_newest_run_of_the_whole_matrix(tmp_path: Path) -> None:
    into = tmp_path / "m.sqlite"
    shards = _shards(tmp_path)
    outcome = merge_stores(shards, into)
    with read_store(into) as store:
        runs = store.runs()
        assert [r.run_id for r in runs[:2]] == ["shard1", "shard2"] and len(runs) == 3
        merged = store.run()  # the newest: what report and compare read by default
        assert merged.run_id.startswith("merged-") and merged.status == "finished"
        assert merged.config == {"models": ["m"], "store": "s1.sqlite", "merged_from": ["shard1", "shard2"]}
        assert merged.commit == COMMIT and merged.host == HOST
        assert merged.started_at == max(r.started_at for r in runs[:2])
        assert [r.compressor for r in store.records(merged.run_id)] == ["none", "quant.int8"]
        assert store.select("SELECT COUNT(*) FROM records")[0][0] == 2  # linked, not copied
    assert any(f"merged run {merged.run_id} finished, shards 1, 2 of 2" in line for line in outcome.lines())
    again = merge_stores(shards, into)
    assert any("already there" in line for line in again.lines())
    with read_store(into) as store:
        assert len(store.runs()) == 3


def test_missing_shard_makes_a_partial_run_until_it_comes(tmp_path: Path) -> None:
    into = tmp_path / "m.sqlite"
    first, second, _ = _shards(tmp_path, count=3, present=(1, 2, 3))
    outcome = merge_stores([first], into)
    assert any("partial" in line and "missing shards 2, 3" in line for line in outcome.lines())
    with read_store(into) as store:
        assert store.run().status == "partial"
    merge_stores([second, tmp_path / "s3.sqlite"], into)
    with read_store(into) as store:
        newest = store.run()
        assert newest.status == "finished" and newest.config["merged_from"] == ["shard1", "shard2", "shard3"]
        assert len(store.records(newest.run_id)) == 3
        assert [r.status for r in store.runs()].count("partial") == 1


def test_a_shard_without_cells_is_not_missing(tmp_path: Path) -> None:
    into = tmp_path / "m.sqlite"
    merge_stores(_shards(tmp_path, count=3, present=(1, 2), sizes=[1, 1, 0]), into)
    with read_store(into) as store:
        assert store.run().status == "finished"


def test_an_unfinished_shard_makes_the_merged_run_partial(tmp_path: Path) -> None:
    into = tmp_path / "m.sqlite"
    path = tmp_path / "s2.sqlite"
    _write_run(path, "shard2", [model_record("quant.int8")], config=_shard_config(2, 2), status="interrupted")
    outcome = merge_stores([*_shards(tmp_path, present=(1,)), path], into)
    assert any("not finished: shard 2 (interrupted)" in line for line in outcome.lines())
    with read_store(into) as store:
        assert store.run().status == "partial"


def test_shards_of_other_commits_or_matrices_stay_apart(tmp_path: Path) -> None:
    one = tmp_path / "one.sqlite"
    _write_run(one, "a1", [model_record("none")], config=_shard_config(1, 2))
    _write_run(one, "a2", [model_record("quant.int8")], config=_shard_config(2, 2), commit={"commit": "def456"})
    _write_run(one, "b2", [model_record("quant.binary")], config=_shard_config(2, 2, matrix="digest2"))
    into = tmp_path / "m.sqlite"
    merge_stores([one], into)
    with read_store(into) as store:
        merged = [r for r in store.runs() if "merged_from" in r.config]
        assert sorted(tuple(r.config["merged_from"]) for r in merged) == [("a1",), ("a2",), ("b2",)]
        assert {r.status for r in merged} == {"partial"}


def test_resumed_shard_is_answered_by_its_newest_finished_run(tmp_path: Path) -> None:
    path = tmp_path / "s1.sqlite"
    _write_run(path, "try1", [model_record("none")], config=_shard_config(1, 1), status="interrupted")
    _write_run(path, "try2", [model_record("none", speedup=2.0)], config=_shard_config(1, 1))
    into = tmp_path / "m.sqlite"
    merge_stores([path], into)
    with read_store(into) as store:
        merged = store.run()
        assert merged.config["merged_from"] == ["try2"] and merged.status == "finished"


def test_merged_run_lists_the_cells_in_the_matrix_order(tmp_path: Path) -> None:
    one, two = tmp_path / "s1.sqlite", tmp_path / "s2.sqlite"
    _write_run(
        one, "k1", [model_record("none"), model_record("quant.bits")], config=_shard_config(1, 2), positions=[0, 2]
    )
    _write_run(two, "k2", [model_record("quant.int8")], config=_shard_config(2, 2), positions=[1])
    into = tmp_path / "m.sqlite"
    merge_stores([two, one], into)
    with read_store(into) as store:
        merged = store.run()
        assert [r.compressor for r in store.records(merged.run_id)] == ["none", "quant.int8", "quant.bits"]
        (cells,) = store.select("SELECT cells_json FROM runs WHERE run_id = ?", (merged.run_id,))[0:1]
        assert [cell["position"] for cell in json.loads(cells[0])] == [0, 1, 2]


def test_a_hand_edited_shard_is_a_plain_run(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    config = _shard_config(1, 2)
    config["shard"]["index"] = "1"
    _write_run(path, "odd", [model_record("none")], config=config)
    outcome = merge_stores([path], tmp_path / "m.sqlite")
    assert outcome.runs_added == 1 and outcome.notes == []


def _not_sqlite(path: Path) -> None:
    path.write_text("hello\n" * 40)


def _newer_layout(path: Path) -> None:
    _write_run(path, "x", [model_record("none")])
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {LAYOUT_VERSION + 1}")


def _newer_records(path: Path) -> None:
    _write_run(path, "x", [model_record("none")])
    with sqlite3.connect(path) as db:
        db.execute("UPDATE records SET schema_version = ?", (SCHEMA_VERSION + 1,))


def _other_program(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE songs (title TEXT)")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (None, "error: merge: no store at"),
        (_not_sqlite, "is not a SQLite database"),
        (_newer_layout, "newer compression-bench"),
        (_newer_records, "newer compression-bench"),
        (_other_program, "another program's SQLite database"),
        (lambda path: path.write_bytes(b""), "has no tables: not a compression-bench store"),
    ],
)
def test_bad_source_is_one_line_and_the_target_is_unchanged(
    tmp_path: Path, two_stores: tuple[Path, Path], make: Any, message: str
) -> None:
    into = tmp_path / "m.sqlite"
    merge_stores([two_stores[1]], into)
    bad = tmp_path / "bad.sqlite"
    if make is not None:
        make(bad)
    before = _files(tmp_path)
    result = run_main(["merge", str(two_stores[0]), str(bad), "--into", str(into)])
    assert result.code == 2 and result.out == ""
    assert result.err.count("\n") == 1 and result.err.startswith("error: ") and message in result.err
    assert _files(tmp_path) == before


def test_bad_target_is_refused(tmp_path: Path, two_stores: tuple[Path, Path]) -> None:
    into = tmp_path / "m.sqlite"
    _newer_layout(into)
    before = into.read_bytes()
    result = run_main(["merge", str(two_stores[0]), "--into", str(into)])
    assert result.code == 2 and result.err.startswith("error: --into: ") and "newer" in result.err
    assert into.read_bytes() == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["merge", "--into", "{m}"], "error: merge needs at least one source store"),
        (["merge", "{a}", "--into", "{a}"], "is also a source"),
        (["merge", "{a}"], "--into"),
    ],
)
def test_bad_command_lines(tmp_path: Path, two_stores: tuple[Path, Path], argv: list[str], message: str) -> None:
    names = {"a": str(two_stores[0]), "m": str(tmp_path / "m.sqlite")}
    before = _files(tmp_path)
    result = run_main([arg.format(**names) for arg in argv])
    assert result.code == 2 and result.err.count("\n") == 1 and message in result.err
    assert _files(tmp_path) == before


def test_cli_merge_report_and_list(tmp_path: Path) -> None:
    into = tmp_path / "m.sqlite"
    result = run_main(["merge", *map(str, _shards(tmp_path)), "--into", str(into)])
    assert result.code == 0, result.err
    assert "3 runs added" in result.out and "merged run merged-" in result.out
    listing = run_main(["list", "runs", "--store", str(into)])
    assert listing.code == 0 and listing.out.count("shard") == 2 and "merged-" in listing.out
    report = run_main(["report", "--store", str(into), "--output", str(tmp_path / "report")])
    assert report.code == 0, report.err
    rows = {line.split("  ")[0] for line in report.out.splitlines()}
    assert {"int8", "none"} <= rows


@pytest.mark.slow
def test_two_shard_runs_merge_into_the_whole_matrix(tmp_path: Path) -> None:
    stores = [tmp_path / f"s{index}.sqlite" for index in (1, 2)]
    for index, store in enumerate(stores, start=1):
        done = run_subprocess(
            "run", "--models", "digits_cnn", "--compressors", "none", "prune.channel:macs_removed=0.5", "--no-layers",
            "--engines", "torchscript", "--budget", "1", "--finetune-steps", "0", "--shard", f"{index}/2",
            "--store", str(store),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "[1/1] ok" in done.stderr  # each shard measures one of the two cells, and counts only its own
    into = tmp_path / "m.sqlite"
    merged = run_subprocess("merge", *map(str, stores), "--into", str(into))
    assert merged.returncode == 0, merged.stderr
    assert "finished, shards 1, 2 of 2" in merged.stdout
    listing = run_subprocess("list", "runs", "--store", str(into))
    assert listing.returncode == 0 and len([line for line in listing.stdout.splitlines() if "finished" in line]) == 3
    report = run_subprocess("report", "--store", str(into))
    assert report.returncode == 0, report.stderr
    rows = [line for line in report.stdout.splitlines() if line.startswith(("none ", "channel 50% "))]
    assert len(rows) == 2
    assert "report: " + str(tmp_path / "runs" / "merged-") in report.stdout
