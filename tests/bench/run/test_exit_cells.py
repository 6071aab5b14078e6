"""Early exit through `python -m bench`: bad values are one line and exit 2; a real run trains once per grid,
times every threshold over the stream of real inputs, skips other batch sizes with the reason, and reports."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from bench.config.run_config import load_config
from bench.config.studies import study_file
from bench.run.matrix import expand
from bench.run.plan import training_key
from tests.bench.conftest import run_main, write_fast_toml

QUICK = ["--models", "digits_cnn", "--no-layers", "--budget", "0.2", "--finetune-steps", "5"]

BAD = {
    "confidence above 1": ("dynamic.early_exit:threshold=1.5",
                           "error: dynamic.early_exit: threshold for rule confidence must be in (0, 1], got 1.5"),
    "confidence 0": ("dynamic.early_exit:threshold=0",
                     "error: dynamic.early_exit: threshold for rule confidence must be in (0, 1], got 0"),
    "negative entropy": ("dynamic.early_exit:rule=entropy:threshold=-1",
                         "error: dynamic.early_exit: threshold for rule entropy must be in [0, ln(classes)] nats"),
    "entropy above ln(classes)": (
        "dynamic.early_exit:rule=entropy:threshold=2.5",
        "error: dynamic.early_exit on digits_cnn: threshold for rule entropy must be in [0, ln(10) = 2.3026] nats for"
        " a model of 10 classes, got 2.5",
    ),
    "a stage the model lacks": (
        "dynamic.early_exit:exits=1+2",
        "error: dynamic.early_exit on digits_cnn: exits: stage 2 is not a stage of Sequential; its stages: 1 (after"
        " MaxPool2d (layer 5))",
    ),
    "exits joined by a comma's grid": ("dynamic.early_exit:exits=0", "error: dynamic.early_exit: exits must be stage"),
    "unknown rule": ("dynamic.early_exit:rule=margin",
                     "error: dynamic.early_exit: rule must be one of confidence, entropy; got 'margin'"),
}  # fmt: skip


@pytest.mark.parametrize(("spec", "message"), BAD.values(), ids=BAD.keys())
def test_a_bad_early_exit_value_exits_2_with_one_line(spec: str, message: str, tmp_path: Path) -> None:
    result = run_main(["run", *QUICK, "--compressors", spec, "--store", str(tmp_path / "s.sqlite")])
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.err
    assert not (tmp_path / "s.sqlite").exists()


def test_no_training_budget_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run_main(["run", *QUICK[:-1], "0", "--compressors", "dynamic.early_exit", "--store", str(tmp_path / "s")])
    assert result.code == 2
    assert result.err.strip() == (
        "error: dynamic.early_exit on digits_cnn: dynamic.early_exit trains its exit heads: finetune_steps must be"
        " >= 1, got 0"
    )


def _records(store: Path) -> list[dict]:
    connection = sqlite3.connect(store)
    try:
        return [json.loads(row[0]) for row in connection.execute("SELECT record_json FROM records")]
    finally:
        connection.close()


@pytest.mark.slow
def test_a_threshold_grid_trains_once_and_is_timed_over_real_inputs(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    config = write_fast_toml(tmp_path)
    spec = "dynamic.early_exit:exits=1:rule=confidence:threshold=0.5,0.99"
    result = run_main(["run", "--config", str(config), *QUICK[:-1], "40", "--batch", "1,2", "--compressors", spec,
                       "--store", str(store)])  # fmt: skip
    assert result.code == 0, result.err
    records = {(r["params"]["threshold"], r["batch"]): r for r in _records(store)}
    assert set(records) == {(0.5, 1), (0.99, 1), (0.5, 2), (0.99, 2)}
    for threshold in (0.5, 0.99):
        skipped = records[(threshold, 2)]
        assert skipped["status"] == "skipped"
        assert "timed at batch 1 only" in skipped["error"]
        record = records[(threshold, 1)]
        assert record["status"] == "ok", record.get("error")
        info = record["compressor_info"]
        assert sum(info["exit_shares"]) == pytest.approx(1.0)
        assert record["macs"]["effective"] == round(info["expected_macs"])
        assert record["latency"]["inputs"] == info["stream"]["inputs"] == len(record["latency"]["samples_s"])
        assert "scripted control flow" in record["executed_as"]
    # One jointly trained network serves both thresholds: the facts of the training are the same.
    low, high = records[(0.5, 1)]["compressor_info"], records[(0.99, 1)]["compressor_info"]
    assert low["exit_top1_alone"] == high["exit_top1_alone"]
    assert low["exit_shares"][0] >= high["exit_shares"][0], "a lower confidence bar lets more inputs leave early"
    report = run_main(["report", "--store", str(store), "--output", str(tmp_path / "report")])
    assert report.code == 0, report.err
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "## Early exit: digits_cnn, exits 1, cpu t=1 b=1" in markdown
    assert "confidence >= 0.99" in markdown and "early-exit-digits-cnn-1-cpu-t-1-b-1.png" in markdown


def test_the_dynamic_studys_early_exit_block_trains_once_per_model_and_exits(tmp_path: Path) -> None:
    config = load_config(study_file("dynamic"), {"store": tmp_path / "s.sqlite"})
    cells = [cell for cell in expand(config) if cell.compressor == "dynamic.early_exit"]
    assert {cell.model for cell in cells} == {"mnist_cnn", "mnist_resnet18"} and {c.batch for c in cells} == {1}
    groups = {training_key(cell) for cell in cells}
    assert len(groups) == len({(cell.model, dict(cell.params)["exits"]) for cell in cells})
    rules = {dict(cell.params)["rule"] for cell in cells}
    assert rules == {"confidence", "entropy"} and config.layers.models == ()
