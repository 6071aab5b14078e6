"""The report's recovery-method section on hand-made records: the table, the verdicts, and when it appears."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bench.records import ModelRecord
from bench.report.sections import RUN_SECTIONS, rendered
from bench.report.sections.recovery import recovery_results, recovery_section
from tests.bench.record_factory import model_record


def _record(method: str, seed: int, top1: float, *, macs_removed: float = 0.5, steps: int | None = None,
            engine: str = "torchscript", **settings: Any) -> ModelRecord:  # fmt: skip
    recovery = {"method": method, **settings, **({"seed": seed} if seed else {})}
    info = {"recovery": {"method": method, "steps": steps, "from": "random init"}} if steps is not None else {}
    record = model_record(
        "prune.channel", {"macs_removed": macs_removed}, model="mnist_cnn", top1=top1, finetune_steps=200,
        compressor_info=info, engine=engine,
    )  # fmt: skip
    return dataclasses.replace(record, recovery=recovery, elapsed_s=2.0)


def test_a_table_per_model_with_mean_spread_and_count_per_method_and_the_best_in_bold() -> None:
    records = [
        _record("finetune", 0, 0.970), _record("finetune", 1, 0.972), _record("finetune", 2, 0.974),
        _record("feature", 0, 0.980, hint_weight=1.0), _record("feature", 1, 0.981, hint_weight=1.0),
        _record("feature", 2, 0.982, hint_weight=1.0),
        _record("scratch-b", 0, 0.975, steps=1894), _record("scratch-b", 1, 0.977, steps=1894),
        _record("scratch-b", 2, 0.976, steps=1894),
    ]  # fmt: skip
    md = recovery_section(records, None)
    text = "\n".join(md)
    assert "## Recovery methods" in text and "### mnist_cnn" in text
    assert "| compressor" in text and "finetune" in text and "feature" in text and "scratch-b" in text
    assert "97.20 ± 0.20 (n=3)" in text
    assert "**98.10 ± 0.10 (n=3)**" in text
    assert "97.60 ± 0.10 (n=3), 1894 steps" in text
    (verdict,) = [line for line in md if line.startswith("- ")]
    assert "feature won (98.10%), 0.50 points above scratch-b" in verdict
    assert "more than the seed spread (0.10): a clear win" in verdict
    assert "finetune 6 s, feature 6 s, scratch-b 6 s" in text
    assert rendered(RUN_SECTIONS["studies"], records, None).markdown == md


def test_a_margin_within_the_seed_spread_is_no_clear_winner_and_one_seed_has_no_spread() -> None:
    close = [_record("finetune", 0, 0.970), _record("finetune", 1, 0.980),
             _record("relational", 0, 0.976, distance_weight=25.0, angle_weight=50.0),
             _record("relational", 1, 0.978, distance_weight=25.0, angle_weight=50.0)]  # fmt: skip
    (verdict,) = [line for line in recovery_section(close, None) if line.startswith("- ")]
    assert "relational won (97.70%), 0.20 points above finetune, within the seed spread (0.71)" in verdict
    single = [_record("finetune", 0, 0.97), _record("scratch-e", 0, 0.96, steps=938)]
    (verdict,) = [line for line in recovery_section(single, None) if line.startswith("- ")]
    assert "one seed each, so no spread to judge the margin by" in verdict
    assert "96.00 (n=1), 938 steps" in "\n".join(recovery_section(single, None))


def test_rows_are_compressor_variants_and_top1_comes_from_one_engine_per_seed() -> None:
    records = [
        _record("finetune", 0, 0.97, macs_removed=0.5), _record("finetune", 0, 0.50, engine="onnxruntime"),
        _record("distill", 0, 0.96, macs_removed=0.5, temperature=4.0, alpha=0.5),
        _record("finetune", 0, 0.90, macs_removed=0.9),
        _record("distill", 0, 0.92, macs_removed=0.9, temperature=4.0, alpha=0.5),
    ]  # fmt: skip
    results = recovery_results(records)
    rows = results["mnist_cnn"]
    assert list(rows) == ["prune.channel macs_removed=0.5", "prune.channel macs_removed=0.9"]
    finetune = rows["prune.channel macs_removed=0.5"][0]
    assert finetune.top1 == (0.97,)  # the ONNX Runtime record of the same seed is not a second seed
    assert finetune.elapsed_s == pytest.approx(4.0)  # but its time counts
    assert [result.method for result in rows["prune.channel macs_removed=0.9"]] == ["finetune", "distill"]


def test_a_method_at_several_settings_gets_a_column_each() -> None:
    records = [_record("feature", 0, 0.97, hint_weight=1.0), _record("feature", 0, 0.98, hint_weight=10.0)]
    methods = [result.method for result in recovery_results(records)["mnist_cnn"]["prune.channel macs_removed=0.5"]]
    assert methods == ["feature hint_weight=1.0", "feature hint_weight=10.0"]


def test_no_section_without_a_comparison_or_a_method_of_its_own() -> None:
    assert recovery_section([_record("finetune", 0, 0.97), _record("finetune", 1, 0.98)], None) == []
    assert recovery_section([model_record("none", model="mnist_cnn", top1=0.99)], None) == []
    assert recovery_section([], None) == []
    assert recovery_section([_record("scratch-e", 0, 0.96, steps=938)], None) != []
