"""A cell's own run-to-run scatter in earlier runs raises that cell's limit, and only where its series is one cell."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bench.compare import Rules, Side, compare_runs
from bench.compare.history_scatter import MIN_STEPS, estimate_history, load_history
from bench.records import ModelRecord, Sizes
from bench.store.database import Run, open_store
from tests.bench.record_factory import MACHINE, model_record, sampled_timing

CELLS = 10
MOVE = 1.06
OTHER_MACHINE = {**MACHINE, "hostname": "other"}


def _side(name: str, records: Sequence[ModelRecord], started: str = "") -> Side:
    run = Run(name, started, None, "finished", {}, {}, {"commit": None, "dirty": None})
    return Side(name, run, tuple(records))


def _measured(i: int, level: float, rng: np.random.Generator, **fields) -> ModelRecord:
    """Cell `i` measured once, tightly (0.5% within the run): its latency `level` times its usual, its speedup as
    much lower; the reference is timed alike in every run, so only the candidate moved."""
    samples = 1e-3 * (1 + i / 10) * np.exp(rng.normal(0, 0.005, 40))
    speedups = np.exp(rng.normal(0, 0.005, 40))
    timing = sampled_timing(samples * level, speedups / level, reference_s=samples)
    return model_record("none", {"i": i}, timing=timing, **fields)


def _series(levels: Sequence[float], seed: int = 0, **per_run: Sequence) -> list[Side]:
    """Runs of cell 0 alone at the given levels, oldest first; `per_run` gives a field per run (sizes, machine)."""
    rng = np.random.default_rng(seed)
    runs = []
    for j, level in enumerate(levels):
        fields = {name: values[j] for name, values in per_run.items()}
        runs.append(_side(f"h{j}", [_measured(0, level, rng, **fields)]))
    return runs


def _key(record: ModelRecord) -> tuple[str, str]:
    return record.cell_id, record.target


def _comparison_runs(history_sigma: dict[int, float], runs: int = 8) -> tuple[Side, Side, list[Side]]:
    """BASE, CAND and `runs` earlier runs of `CELLS` cells; cells 0 and 1 moved by `MOVE` in CAND. In the history,
    cell i scatters by `history_sigma[i]` (log sigma) between runs, every other cell by 0.5%."""
    rng = np.random.default_rng(5)
    history = []
    for j in range(runs):
        levels = [math.exp(rng.normal(0, history_sigma.get(i, 0.005))) for i in range(CELLS)]
        history.append(_side(f"h{j}", [_measured(i, levels[i], rng) for i in range(CELLS)]))
    base = _side("base", [_measured(i, 1.0, rng) for i in range(CELLS)])
    cand = _side("cand", [_measured(i, MOVE if i in (0, 1) else 1.0, rng) for i in range(CELLS)])
    return base, cand, history


def test_a_restless_cell_is_not_called_changed_by_a_move_within_its_own_scatter_a_quiet_one_is() -> None:
    base, cand, history = _comparison_runs({0: 0.05})
    alone = compare_runs(base, cand, Rules())
    assert alone.rules.limit("speedup") == pytest.approx(0.05)  # the cross-cell scatter leaves the threshold
    assert [cell.verdict for cell in alone.cells[:2]] == ["regressed", "regressed"]
    assert all(cell.metrics["speedup"].p_value < 1e-6 for cell in alone.cells[:2])  # the samples see the move
    assert {cell.verdict for cell in alone.cells[2:]} == {"unchanged"}

    judged = compare_runs(base, cand, Rules(), history=history)
    restless, quiet = judged.cells[:2]
    assert restless.verdict == "unchanged", restless.why
    assert f"its own run-to-run scatter in earlier runs ({len(history) - 1} steps): latency +-" in restless.why
    assert "changes count beyond" in restless.why
    assert quiet.verdict == "regressed" and "run-to-run" not in quiet.why
    assert {cell.verdict for cell in judged.cells[2:]} == {"unchanged"}
    own = judged.cell_scatter[restless.key]
    assert math.log(MOVE) / 3 < own["speedup"].sigma < 0.08 and own["speedup"].cells == len(history) - 1
    assert judged.cell_rules(restless.key).limit("speedup") > MOVE - 1
    assert judged.cell_rules(quiet.key).limit("speedup") == pytest.approx(0.05)
    assert judged.rules == alone.rules  # the comparison's own limits are the cross-cell ones still


def test_the_candidate_run_in_its_own_history_does_not_excuse_its_move() -> None:
    base, cand, history = _comparison_runs({}, runs=MIN_STEPS)
    # Only with CAND among them would cell 0 have enough steps, and its own 6% move would be one of them.
    judged = compare_runs(base, cand, Rules(), history=[*history, cand])
    assert judged.cells[0].verdict == "regressed" and judged.cell_scatter == {}


def test_the_estimate_is_the_robust_scatter_of_consecutive_log_differences() -> None:
    levels = [1.0, 1.04, 0.98, 1.05, 1.0, 0.97]
    (scatter,) = [found["speedup"] for found in estimate_history(_series(levels)).values()]
    steps = np.diff(-np.log(levels))
    expected = 1.4826 * np.median(abs(steps - np.median(steps))) / math.sqrt(2)
    assert scatter.cells == len(levels) - 1
    assert scatter.sigma == pytest.approx(expected, rel=0.15)  # the levels, blurred by 0.5% within each run


def test_a_change_of_bytes_breaks_the_series() -> None:
    levels = [1.0, 1.05, 0.95, 1.05, 0.95, 1.05]
    small = Sizes(params_total=1000, params_nonzero=100, dense_bytes=4000, csr_bytes=800, gzip_bytes=700)
    sizes = [None, None, small, small, None, None]  # None: the factory's default sizes
    found = estimate_history(_series(levels, sizes=sizes))
    assert found == {}  # steps 0-1, 2-3 and 4-5 only: a step across another compressed model is no step
    assert next(iter(estimate_history(_series(levels)).values()))["speedup"].cells == 5


def test_a_change_of_engine_breaks_the_series() -> None:
    runs = _series([1.0, 1.05, 0.95, 1.05, 0.95, 1.05])
    changed = dataclasses.replace(runs[3].records[0], engine="onnxruntime")  # the cell id kept: one cell key
    runs[3] = dataclasses.replace(runs[3], records=(changed,))
    assert estimate_history(runs) == {}  # steps 0-1, 1-2, and 4-5: the engine changed at 3 and back at 4


def test_too_few_runs_give_no_estimate() -> None:
    assert estimate_history(_series([1.0, 1.05, 0.95, 1.05])) == {}  # MIN_STEPS - 1 steps
    found = estimate_history(_series([1.0, 1.05, 0.95, 1.05, 0.95]))
    assert {metric: s.cells for metric, s in next(iter(found.values())).items()} == {
        "latency": MIN_STEPS,
        "speedup": MIN_STEPS,
    }


def test_a_record_reused_by_later_runs_is_one_measurement() -> None:
    runs = _series([1.0, 1.05, 0.95, 1.05, 0.95])
    reused = [runs[0], runs[1], dataclasses.replace(runs[1], run=runs[2].run), *runs[2:]]
    found = next(iter(estimate_history(reused).values()))
    assert found["speedup"].cells == MIN_STEPS


def test_unflagged_ok_records_only() -> None:
    runs = _series([1.0, 1.05, 0.95, 1.05, 0.95, 1.05])
    busy = sampled_timing([1e-3] * 40, busy=True, other_cpu_cores=1.0)
    record = runs[2].records[0]
    runs[2] = dataclasses.replace(runs[2], records=(dataclasses.replace(record, timing=busy),))
    found = next(iter(estimate_history(runs).values()))
    assert found["speedup"].cells == MIN_STEPS  # the busy run is left out: 1 -> 3 is one step
    failed = model_record("none", {"i": 0}, status="failed")
    runs[2] = dataclasses.replace(runs[2], records=(failed,))
    assert next(iter(estimate_history(runs).values()))["speedup"].cells == MIN_STEPS


def test_latency_across_machines_is_not_used_speedup_is() -> None:
    levels = [1.0, 1.05, 0.95, 1.05, 0.95, 1.05]
    machines = [MACHINE, OTHER_MACHINE] * 3
    found = next(iter(estimate_history(_series(levels, machine=machines)).values()))
    assert "latency" not in found and found["speedup"].cells == len(levels) - 1


def test_load_history_reads_the_newest_run_of_each_store_oldest_first(tmp_path: Path) -> None:
    runs = _series([1.0, 1.05, 0.95])
    started = ["2026-03-02T00:00:00+00:00", "2026-03-01T00:00:00+00:00", "2026-03-03T00:00:00+00:00"]
    paths = []
    for side, when in zip(runs, started, strict=True):
        path = tmp_path / f"{side.run.run_id}.sqlite"
        with open_store(path) as store:
            store.start_run(side.run.run_id, {}, [], {}, {"commit": None})
            for record in side.records:
                store.add_record(side.run.run_id, record)
            store.finish_run(side.run.run_id, "finished")
            with store.transaction() as db:
                db.execute("UPDATE runs SET started_at = ? WHERE run_id = ?", (when, side.run.run_id))
        paths.append(path)
    (tmp_path / "broken.sqlite").write_text("not a store")
    loaded = load_history([*paths, tmp_path / "broken.sqlite"])
    assert [side.run.run_id for side in loaded] == ["h1", "h0", "h2"]
    assert [side.records for side in loaded] == [runs[1].records, runs[0].records, runs[2].records]
    assert [side.run.run_id for side in load_history(paths, lambda side: side.run.run_id != "h0")] == ["h1", "h2"]
