"""The lottery study's report section, from records made by hand, and the study file itself."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from bench.analysis.lottery import lottery_points
from bench.config.run_config import load_config
from bench.config.studies import study_file
from bench.records import Accuracy, ModelRecord
from bench.report.sections import RUN_SECTIONS, rendered
from bench.report.sections.lottery import LOTTERY, lottery_section
from bench.run.matrix import expand
from compressors.iterative import IterativePruning
from tests.bench.record_factory import model_record

BUDGET = 600
SEEDS = (0, 1, 2)

# rounds -> method -> top-1 of seeds 0, 1, 2. At 0.5 the ticket wins clearly, at 0.75 within the spread, at 0.875
# reinit wins clearly.
TOP1 = {
    1: {"init": (0.980, 0.981, 0.982), "reinit": (0.950, 0.951, 0.952), "none": (0.985,) * 3, "early": (0.983,) * 3},
    2: {"init": (0.970, 0.975, 0.980), "reinit": (0.968, 0.970, 0.972), "none": (0.984,) * 3, "early": (0.98,) * 3},
    3: {"init": (0.900, 0.901, 0.902), "reinit": (0.930, 0.931, 0.932), "none": (0.983,) * 3, "early": (0.97,) * 3},
}
ONE_SHOT = {0.5: 0.986, 0.75: 0.984, 0.875: 0.979}


def _with(record: ModelRecord, seed: int, info: dict[str, Any], top1: float) -> ModelRecord:
    return dataclasses.replace(
        record,
        recovery={"seed": seed} if seed else {},
        compressor_info=info,
        accuracy=Accuracy(top1=top1, baseline=0.99, before_recovery=None, note=None, images=10000),
    )


def iterative(rounds: int, rewind: str, seed: int, top1: float, **fields: Any) -> ModelRecord:
    config = IterativePruning(rate=0.5, rounds=rounds, rewind=rewind, rewind_step=50 if rewind == "early" else 0)
    sparsity = config.final_sparsity
    record = model_record(
        "prune.iterative", config.to_dict(), model="mnist_cnn", finetune_steps=BUDGET, theoretical=1 / (1 - sparsity),
        speedup=fields.pop("speedup", 1.01), executed_as="dense kernels (zeros stored)", **fields,
    )  # fmt: skip
    return _with(record, seed, {"sparsity_achieved": sparsity, "per_round": []}, top1)


def one_shot(sparsity: float, seed: int, top1: float, steps: int = BUDGET, **recovery: Any) -> ModelRecord:
    params = {"sparsity": sparsity, "scope": "global", "execution": "dense"}
    record = model_record(
        "prune.unstructured", params, model="mnist_cnn", finetune_steps=steps, theoretical=1 / (1 - sparsity),
        executed_as="dense kernels (zeros stored)",
    )  # fmt: skip
    record = _with(record, seed, {"sparsity_achieved": sparsity}, top1)
    return dataclasses.replace(record, recovery={**record.recovery, **recovery}) if recovery else record


def study_records() -> list[ModelRecord]:
    records = [model_record("none", model="mnist_cnn", top1=0.99)]
    for rounds, methods in TOP1.items():
        for rewind, top1s in methods.items():
            records += [iterative(rounds, rewind, seed, top1) for seed, top1 in zip(SEEDS, top1s, strict=True)]
    for sparsity, top1 in ONE_SHOT.items():
        records += [one_shot(sparsity, seed, top1) for seed in SEEDS]
    return records


def test_points_group_methods_and_seeds_at_one_budget() -> None:
    found = lottery_points(study_records())
    assert list(found) == [("mnist_cnn", BUDGET, "global")]
    series = found[("mnist_cnn", BUDGET, "global")]
    assert list(series) == ["ticket", "late rewind (step 50)", "fine-tune", "reinit", "one-shot"]
    ticket = series["ticket"]
    assert [p.sparsity for p in ticket] == [0.5, 0.75, 0.875]
    assert ticket[1].seeds == SEEDS and ticket[1].top1 == TOP1[2]["init"]
    assert ticket[1].mean == pytest.approx(0.975) and ticket[1].spread == pytest.approx(0.01)
    assert [p.mean for p in series["one-shot"]] == pytest.approx(list(ONE_SHOT.values()))


def test_one_sentence_per_sparsity_says_whether_the_ticket_beat_reinit_by_more_than_the_spread(
    tmp_path: Path,
) -> None:
    md = lottery_section(study_records(), tmp_path)
    sentences = [line for line in md if line.startswith("At ")]
    assert sentences == [
        "At 0.500 sparsity the ticket (98.10%) beat reinit (95.10%) by 3.00 points, more than the seed spread"
        " (0.20 points over 3 seeds).",
        "At 0.750 sparsity the ticket (97.50%) did not beat reinit (97.00%) by more than the seed spread"
        " (1.00 points over 3 seeds): the gap is +0.50 points.",
        "At 0.875 sparsity reinit (93.10%) beat the ticket (90.10%) by 3.00 points, more than the seed spread"
        " (0.20 points over 3 seeds).",
    ]


def test_the_figure_is_drawn_and_linked_and_tables_show_the_seed_range(tmp_path: Path) -> None:
    md = lottery_section(study_records(), tmp_path)
    figures = [line for line in md if line.startswith("![")]
    assert figures == ["![mnist_cnn top-1 vs sparsity](lottery-mnist-cnn-600-global.png)"]
    assert (tmp_path / "lottery-mnist-cnn-600-global.png").stat().st_size > 0
    table = "\n".join(md)
    assert "| 0.750      | 97.50% [97.00, 98.00]" in table
    assert "seed range (lowest to highest seed)" in table
    without = lottery_section(study_records(), None)
    assert not any(line.startswith("![") for line in without)
    drawn = [line for line in md if line and not line.startswith("![") and not line.startswith("*Top-1")]
    assert [line for line in without if line] == drawn


def test_the_tickets_latency_is_shown_as_what_ran_dense_and_not_fast(tmp_path: Path) -> None:
    md = "\n".join(lottery_section(study_records(), tmp_path)).splitlines()
    speed = next(line for line in md if line.startswith("A winning ticket is unstructured sparsity"))
    assert "executed as dense kernels over stored zeros" in speed
    assert "measured 1.01x the dense baseline's speed" in speed
    ticket_rows = [line for line in md if line.startswith("| ticket ")]
    assert len(ticket_rows) == 3
    assert all("dense kernels (zeros stored)" in row and "1.01x" in row for row in ticket_rows)
    assert "8.00x" in ticket_rows[-1]  # the MACs' promise at 0.875, beside the 1.01x that ran


def test_one_shot_joins_only_at_the_same_budget_and_with_plain_fine_tuning() -> None:
    records = [
        *study_records(),
        one_shot(0.5, 0, 0.5, steps=200),
        one_shot(0.5, 0, 0.5, method="distill", temperature=4.0, alpha=0.5),
    ]
    series = lottery_points(records)[("mnist_cnn", BUDGET, "global")]
    assert series["one-shot"][0].top1 == (ONE_SHOT[0.5],) * 3


def test_a_configuration_timed_at_two_places_counts_each_seed_once() -> None:
    records = study_records()
    elsewhere = [dataclasses.replace(r, threads=2) for r in records if r.compressor == "prune.iterative"]
    series = lottery_points(records + elsewhere)[("mnist_cnn", BUDGET, "global")]
    assert series["ticket"][0].seeds == SEEDS
    assert len(series["ticket"][0].records) == 6  # both places, for the latency table


def test_one_seed_has_no_spread_to_judge_by() -> None:
    records = [r for r in study_records() if not r.recovery.get("seed")]
    sentences = [line for line in lottery_section(records, None) if line.startswith("At ")]
    assert sentences[0] == (
        "At 0.500 sparsity the ticket (98.00%) beat reinit (95.00%) by 3.00 points with one seed: no seed spread to"
        " judge the gap by."
    )


def test_nothing_without_iterative_cells_and_failed_cells_are_left_out() -> None:
    assert lottery_section([r for r in study_records() if r.compressor != "prune.iterative"], None) == []
    failed = model_record("prune.iterative", IterativePruning().to_dict(), status="failed", finetune_steps=BUDGET)
    assert lottery_section([failed], None) == []


def test_the_section_is_one_of_the_reports_study_sections() -> None:
    assert LOTTERY in RUN_SECTIONS["studies"]
    shown = rendered(RUN_SECTIONS["studies"], study_records(), None).wide.splitlines()
    assert "Lottery tickets: iterative pruning with rewinding, at a fixed training budget" in shown
    assert sum(line.startswith("At ") for line in shown) == 3


def test_the_study_compares_every_method_at_the_same_sparsities_budget_and_seeds() -> None:
    config = load_config(study_file("lottery"))
    cells = expand(config)
    assert len(config.recovery.seeds) >= 3
    assert config.layers.models == ()
    pruned = [c for c in cells if c.compressor != "none"]
    assert {c.finetune_steps for c in pruned} == {config.finetune_steps}
    rewinds = {dict(c.params)["rewind"] for c in pruned if c.compressor == "prune.iterative"}
    assert rewinds == {"init", "early", "none", "reinit"}
    iterative_levels = {
        IterativePruning.from_dict(dict(c.params)).final_sparsity for c in pruned if c.compressor == "prune.iterative"
    }
    one_shot_levels = {dict(c.params)["sparsity"] for c in pruned if c.compressor == "prune.unstructured"}
    assert iterative_levels == one_shot_levels and len(one_shot_levels) == 6
    # Every point has all its seeds: 4 rewinds and one-shot, 6 sparsities each.
    assert len(pruned) == 5 * 6 * len(config.recovery.seeds)
