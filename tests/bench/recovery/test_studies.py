"""The recovery studies end to end: their matrix files, the new methods through `python -m bench run`, and a seeded
mini study that gives the same top-1 twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.config.run_config import load_config
from bench.config.studies import study_file
from bench.run.matrix import expand
from bench.store.database import read_store
from tests.bench.conftest import run_main, write_fast_toml


def test_the_study_files_expand_to_the_cells_their_headers_count() -> None:
    distill = expand(load_config(study_file("distill")))
    assert len(distill) == 37
    assert {dict(cell.recovery).get("method") for cell in distill} == {None, "finetune", "distill", "feature",
                                                                        "relational"}  # fmt: skip
    scratch = expand(load_config(study_file("scratch")))
    assert len(scratch) == 28
    assert {dict(cell.recovery).get("seed", 0) for cell in scratch if cell.recovery} == {0, 1, 2}
    assert {dict(cell.recovery).get("method") for cell in scratch} == {None, "finetune", "scratch-e", "scratch-b"}


def _run(tmp_path: Path, methods: str, seeds: str, steps: int) -> Path:
    store = tmp_path / "results" / "bench.sqlite"
    result = run_main([
        "run", "--config", str(write_fast_toml(tmp_path)), "--models", "digits_cnn", "--compressors",
        "prune.channel:macs_removed=0.7", "--recovery", methods, "--seeds", seeds, "--finetune-steps", str(steps),
        "--budget", "0.2", "--no-layers", "--store", str(store),
    ])  # fmt: skip
    assert result.code == 0, result.err
    assert "Recovery methods" in result.out
    return store


def test_the_new_methods_run_end_to_end_and_the_records_say_what_they_trained(tmp_path: Path) -> None:
    store = _run(tmp_path, "feature,relational,scratch-e", "0", 10)
    with read_store(store) as opened:
        run = opened.run()
        records = {r.recovery["method"]: r for r in opened.records(run.run_id)}
    assert records["feature"].compressor_info["recovery"]["adapter"][1] == 32  # student channels -> the teacher's 32
    assert records["relational"].compressor_info["recovery"]["embedding"] == "input of Linear '8'"
    scratch = records["scratch-e"].compressor_info["recovery"]
    assert scratch["steps"] == 675 and scratch["from"] == "random init"  # digits_cnn: 15 epochs of 45 batches
    for record in records.values():
        assert record.accuracy is not None and record.accuracy.top1 is not None and record.accuracy.top1 > 0.5
    report = (store.parent / "runs" / run.run_id / "report.md").read_text()
    assert "## Recovery methods" in report and "675 steps" in report and "(scratch-e, 675 steps)" in report


@pytest.mark.slow
def test_a_seeded_two_seed_mini_study_gives_the_same_top1_twice(tmp_path: Path) -> None:
    tops = []
    for attempt in ("first", "second"):
        (tmp_path / attempt).mkdir()
        store = _run(tmp_path / attempt, "finetune,distill,feature,relational,scratch-e,scratch-b", "0,1", 20)
        with read_store(store) as opened:
            records = opened.records(opened.run().run_id)
        assert len(records) == 12
        tops.append({(r.recovery["method"], r.recovery.get("seed", 0)): r.accuracy.top1 for r in records if r.accuracy})
    assert len(tops[0]) == 12
    assert tops[0] == tops[1]
    assert tops[0][("feature", 0)] != tops[0][("feature", 1)] or tops[0][("scratch-b", 0)] != tops[0][("scratch-b", 1)]
