"""The report's early-exit section: a table per model and place, its sentence, its figure, and nothing without
early-exit cells."""

from __future__ import annotations

from pathlib import Path

from bench.records import Macs, ModelRecord, StreamLatency
from bench.report.sections import RUN_SECTIONS
from bench.report.sections.exit import EXIT, exit_section
from tests.bench.record_factory import model_record

BASELINE_S = 1e-3


def _record(rule: str, threshold: float, shares: list[float], top1: float, candidate: list[float]) -> ModelRecord:
    latency = StreamLatency.from_worker({"baseline_inputs_s": [BASELINE_S] * len(candidate),
                                         "candidate_inputs_s": candidate})  # fmt: skip
    info = {
        "exits": [1], "exit_stages": ["after MaxPool2d (layer 3)", "final"], "trained_steps": 200,
        "exit_top1_alone": [0.97, 0.99], "exit_macs": [100, 1100], "exit_shares": shares,
    }  # fmt: skip
    expected = round(sum(s * m for s, m in zip(shares, info["exit_macs"], strict=True)))
    record = model_record("dynamic.early_exit", {"exits": "1", "rule": rule, "threshold": threshold}, model="mnist_cnn",
                          top1=top1, latency=latency, compressor_info=info,
                          macs=Macs(dense=1100, effective=expected, baseline=1000))  # fmt: skip
    assert record.accuracy is not None
    return ModelRecord(**{**vars(record), "accuracy": type(record.accuracy)(**{**vars(record.accuracy),
                                                                               "baseline": 0.99})})  # fmt: skip


def test_the_section_tables_every_threshold_and_names_the_fastest_that_keeps_top1(tmp_path: Path) -> None:
    records = [
        _record("confidence", 0.99, [0.5, 0.5], 0.99, [1e-4] * 5 + [1.2e-3] * 5),
        _record("confidence", 0.5, [0.9, 0.1], 0.95, [1e-4] * 9 + [1.2e-3]),
        _record("entropy", 0.1, [0.6, 0.4], 0.988, [1e-4] * 6 + [1.2e-3] * 4),
        model_record("none", model="mnist_cnn", top1=0.99),
    ]
    lines = exit_section(records, tmp_path)
    assert lines[0] == "## Early exit: mnist_cnn, exits 1, cpu t=1 b=1"
    rows = [line for line in lines if line.startswith("| ") and "%" in line and "rule" not in line]
    assert [row.split("|")[1].strip() for row in rows] == ["confidence >= 0.5", "confidence >= 0.99", "entropy <= 0.1"]
    assert "| 90% / 10%" in rows[0]
    # Half the inputs leave at a tenth of the baseline's time, half take 1.2x: the mean speedup is 1/0.65.
    assert f"{1 / 0.65:.2f}x" in rows[1]
    sentence = next(line for line in lines if line.startswith("The fastest rule"))
    assert "entropy <= 0.1" in sentence and "slower than the reference's" in sentence
    figure = next(line for line in lines if line.startswith("!["))
    assert (tmp_path / figure.split("(")[1].rstrip(")")).stat().st_size > 0


def test_no_threshold_that_keeps_top1_is_said() -> None:
    lines = exit_section([_record("confidence", 0.5, [0.9, 0.1], 0.9, [1e-4] * 10)], None)
    assert "No threshold kept mnist_cnn's top-1 within 0.5 points of the reference." in lines
    assert not any(line.startswith("![") for line in lines)


def test_a_run_without_early_exit_cells_has_no_section() -> None:
    assert (
        exit_section([model_record("none", top1=0.9), model_record("prune.channel", {"macs_removed": 0.5})], None) == []
    )
    assert EXIT in RUN_SECTIONS["studies"]
