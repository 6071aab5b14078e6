"""The width study's report section: each width beside the pruned model of its MAC budget, and who wins."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from bench.records import Macs, ModelRecord, Sizes
from bench.report.sections import RUN_SECTIONS, rendered
from bench.report.sections.width import width_section
from tests.bench.record_factory import model_record, timing

WIDTHS = "0.25/0.5/1.0"
# width -> (MACs of 1000, top-1, speedup CI) of a slimmable model's cells
SLIM = {0.25: (70, 0.60, (1.9, 2.1)), 0.5: (260, 0.950, (1.4, 1.6)), 1.0: (1000, 0.99, (0.95, 1.05))}


def _info(loss: str = "labels") -> dict[str, Any]:
    per_width = {repr(w): {"channels": [], "params": 10 * macs, "top1_sliced": top1 / 2}
                 for w, (macs, top1, _) in SLIM.items()}  # fmt: skip
    return {"widths": [0.25, 0.5, 1.0], "per_width": per_width, "params_shared": 10_000,
            "training": {"steps": 60, "seed": 0, "loss": loss, "widths_per_step": 3}}  # fmt: skip


def _sizes(params: int) -> Sizes:
    return Sizes(params_total=params, params_nonzero=params, dense_bytes=4 * params, csr_bytes=8 * params,
                 gzip_bytes=4 * params)  # fmt: skip


def _record(compressor: str, params: dict[str, Any], macs: int, top1: float, ci: tuple[float, float],
            steps: int = 60, **fields: Any) -> ModelRecord:  # fmt: skip
    speedup = sum(ci) / 2
    record = model_record(
        compressor, params, model="mnist_cnn", top1=top1, finetune_steps=steps,
        macs=Macs(dense=macs, effective=macs, baseline=1000), timing=timing(speedup, *ci), sizes=_sizes(10 * macs),
        **fields,
    )  # fmt: skip
    assert record.accuracy is not None
    return dataclasses.replace(record, accuracy=dataclasses.replace(record.accuracy, baseline=0.98))


def _slimmable(loss: str = "labels") -> list[ModelRecord]:
    return [
        _record("dynamic.width", {"widths": WIDTHS, "width": w, "loss": loss}, macs, top1, ci,
                compressor_info=_info(loss))
        for w, (macs, top1, ci) in SLIM.items()
    ]  # fmt: skip


def _pruned() -> list[ModelRecord]:
    return [
        _record("prune.channel", {"macs_removed": 0.93, "criterion": "l1"}, 75, 0.90, (1.4, 1.6)),
        _record("prune.channel", {"macs_removed": 0.74, "criterion": "l1"}, 262, 0.951, (1.45, 1.65)),
        # Another training budget: not the same comparison, never paired.
        _record("prune.channel", {"macs_removed": 0.74, "criterion": "l1"}, 260, 0.999, (9.0, 9.5), steps=5),
    ]


def test_no_width_cells_no_section() -> None:
    assert width_section(_pruned(), None) == []
    failed = dataclasses.replace(_slimmable()[0], status="failed", error="boom", timing=None, macs=None, sizes=None)
    assert width_section([failed, *_pruned()], None) == []


def test_each_width_stands_beside_the_pruned_model_of_its_budget_and_the_winner_is_said() -> None:
    md = width_section([*_slimmable(), *_pruned()], None)
    text = "\n".join(md)
    assert md[0] == "## One model that switches width against one pruned model per MAC budget"
    rows = [line for line in text.splitlines() if line.startswith("| 0.") or line.startswith("| 1.")]
    assert [row.split("|")[1].strip() for row in rows] == ["0.070", "0.260", "1.000"]
    assert "macs_removed=0.93" in rows[0] and "0.075" in rows[0] and "30.00%" in rows[0]  # sliced top-1 shown
    assert "macs_removed=0.74" in rows[1] and "95.10%" in rows[1] and "99.90%" not in text
    assert rows[2].count("| -") >= 7
    assert (
        "- MAC budget 0.070 (width 0.25), against prune.channel macs_removed=0.93 (budget 0.075): top-1: the pruned"
        " model (60.00% vs 90.00%); latency: the slimmable width (2.00x [1.90, 2.10] vs 1.50x [1.40, 1.60])."
    ) in md
    assert (
        "- MAC budget 0.260 (width 0.5), against prune.channel macs_removed=0.74 (budget 0.262): top-1: neither"
        " (95.00% vs 95.10%, within two standard errors); latency: neither (1.50x [1.40, 1.60] vs 1.55x [1.45, 1.65],"
        " intervals overlap)."
    ) in md
    assert "- MAC budget 1.000 (width 1), the full model: top-1 99.00% against the reference's 98.00%." in md
    assert (
        "One slimmable model holds its 3 widths in 10,000 parameters; the 2 pruned models beside them and the dense"
        " model for the full width hold 13,370 together, one model per budget."
    ) in md


def test_each_slimmable_model_has_its_table_and_figure(tmp_path: Path) -> None:
    md = width_section([*_slimmable("labels"), *_slimmable("inplace"), *_pruned()], tmp_path)
    headings = [line for line in md if line.startswith("### ")]
    assert headings == [
        "### mnist_cnn, cpu t=1 b=1: dynamic.width loss=labels widths=0.25/0.5/1.0, 60 steps",
        "### mnist_cnn, cpu t=1 b=1: dynamic.width loss=inplace widths=0.25/0.5/1.0, 60 steps",
    ]
    figures = [line for line in md if line.startswith("![")]
    assert len(figures) == 2
    for line in figures:
        name = line.split("(")[-1].rstrip(")")
        assert (tmp_path / name).stat().st_size > 0


def test_a_seed_pairs_with_the_pruned_model_of_that_seed() -> None:
    seeded = [dataclasses.replace(r, recovery={"seed": 1}) for r in _slimmable()]
    md = width_section([*seeded, *_pruned()], None)
    assert any(line.endswith("60 steps, seed 1") for line in md)
    assert sum("no prune.channel cell" in line for line in md) == 2


def test_the_report_shows_the_section() -> None:
    shown = rendered(RUN_SECTIONS["studies"], [*_slimmable(), *_pruned()], None)
    assert "## One model that switches width against one pruned model per MAC budget" in shown.markdown
