"""The run-to-run scatter of a comparison's cells raises the limit a timing change must pass, and only that."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bench.compare import Rules, Side, compare_runs
from bench.compare.scatter import MIN_CELLS, estimate_scatter
from bench.records import Record
from bench.store.database import Run
from tests.bench.record_factory import model_record, sampled_timing

CELLS = 20


def _side(name: str, records: list[Record]) -> Side:
    return Side(name, Run(name, "", None, "finished", {}, {}, {"commit": None, "dirty": None}), tuple(records))


def _runs(shifts: np.ndarray, flagged: frozenset[int] = frozenset()) -> tuple[Side, Side]:
    """Two runs of `len(shifts)` cells, each timed tightly (0.5% within a run), the candidate's cell i moved by
    the factor `shifts[i]` in latency and speedup alike."""
    rng = np.random.default_rng(7)
    base, cand = [], []
    for i, shift in enumerate(shifts):
        samples = 1e-3 * (1 + i / 10) * np.exp(rng.normal(0, 0.005, (2, 40)))
        speedups = np.exp(rng.normal(0, 0.005, (2, 40)))
        base.append(model_record("none", {"i": i}, timing=sampled_timing(samples[0], speedups[0])))
        busy = {"busy": True, "other_cpu_cores": 1.0} if i in flagged else {}
        moved = sampled_timing(samples[1] * shift, speedups[1] / shift, **busy)
        cand.append(model_record("none", {"i": i}, timing=moved))
    return _side("base", base), _side("cand", cand)


def _verdicts(base: Side, cand: Side) -> dict[str, int]:
    return compare_runs(base, cand, Rules()).counts()


def test_a_scatter_between_runs_that_samples_cannot_see_does_not_call_changes() -> None:
    # Each cell moved by a quantile of a 4% log-normal, as two real runs of one commit moved (see the module).
    shifts = np.exp(0.04 * stats.norm.ppf((np.arange(CELLS) + 0.5) / CELLS))
    base, cand = _runs(shifts)
    assert sum(abs(np.log(shifts)) > np.log(1.05)) >= 3  # a fixed 5% threshold alone would call these
    comparison = compare_runs(base, cand, Rules())
    assert comparison.counts()["unchanged"] >= CELLS - 1
    assert comparison.rules.limit("latency") > 0.05 and comparison.scatter_note
    assert "run-to-run scatter latency" in comparison.scatter_note


def test_a_common_slowdown_of_every_cell_is_still_caught() -> None:
    shifts = 1.2 * np.exp(np.random.default_rng(2).normal(0, 0.01, CELLS))
    counts = _verdicts(*_runs(shifts))
    assert counts["regressed"] == CELLS


def test_one_real_regression_among_steady_cells_is_caught_and_the_threshold_stays() -> None:
    shifts = np.exp(np.random.default_rng(3).normal(0, 0.005, CELLS))
    shifts[4] = 1.15
    comparison = compare_runs(*_runs(shifts), Rules())
    assert [c.verdict for c in comparison.cells].count("regressed") == 1 and comparison.cells[4].verdict == "regressed"
    assert comparison.rules.limit("latency") == pytest.approx(0.05) and comparison.scatter_note is None


def test_too_few_or_flagged_cells_leave_the_threshold_alone() -> None:
    shifts = np.exp(np.random.default_rng(4).normal(0, 0.05, CELLS))
    few = _runs(shifts[: MIN_CELLS - 1])
    assert compare_runs(*few, Rules()).scatter == ()
    flagged = _runs(shifts, flagged=frozenset(range(CELLS - MIN_CELLS + 1)))
    pairs = list(zip(flagged[0].records, flagged[1].records, strict=True))
    assert estimate_scatter(pairs, "latency") is None


def _phase(moved: set[int], factor: float, cells: int = 10) -> tuple[Side, Side]:
    """Two runs of `cells` cells of one model; in CAND, the cells in `moved` ran `factor` slower, reference and
    candidate alike (what a slow phase of a shared machine, or a change to what both share, does)."""
    rng = np.random.default_rng(11)
    base, cand = [], []
    for i in range(cells):
        samples = 1e-3 * (1 + i / 10) * np.exp(rng.normal(0, 0.005, (4, 40)))
        speedups = np.exp(rng.normal(0, 0.005, (2, 40)))
        scale = factor if i in moved else 1.0
        base.append(model_record("none", {"i": i}, timing=sampled_timing(samples[0], speedups[0], samples[1])))
        moved_timing = sampled_timing(samples[2] * scale, speedups[1], samples[3] * scale)
        cand.append(model_record("none", {"i": i}, timing=moved_timing))
    return _side("base", base), _side("cand", cand)


def test_cells_that_moved_with_their_own_reference_in_one_phase_are_inconclusive() -> None:
    comparison = compare_runs(*_phase({0, 1, 2}, 1.5), Rules())
    latency = [cell.metrics["latency"] for cell in comparison.cells]
    assert [m.outcome for m in latency[:3]] == ["inconclusive"] * 3
    assert all("own reference (+50%)" in m.note for m in latency[:3])
    assert {m.outcome for m in latency[3:]} == {"unchanged"}
    assert {cell.metrics["speedup"].outcome for cell in comparison.cells} == {"unchanged"}


def test_a_move_every_cell_of_the_model_shares_is_judged_as_a_change() -> None:
    comparison = compare_runs(*_phase(set(range(10)), 1.3), Rules())
    assert {cell.metrics["latency"].outcome for cell in comparison.cells} == {"regressed"}
    assert comparison.failed


def test_a_cell_whose_reference_moved_far_more_than_the_models_other_cells_is_inconclusive() -> None:
    """Every other cell of the model (and its reference) 20% slower, one cell 60%: that one is its own drift."""
    base, shared = _phase(set(range(1, 10)), 1.2)
    alone = _phase({0}, 1.6)[1].records[0]
    comparison = compare_runs(base, _side("cand", [alone, *shared.records[1:]]), Rules())
    latency = [cell.metrics["latency"] for cell in comparison.cells]
    assert latency[0].outcome == "inconclusive" and "own reference (+60%)" in latency[0].note
    assert {m.outcome for m in latency[1:]} == {"regressed"}
