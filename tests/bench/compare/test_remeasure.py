"""Paired re-measurement on this machine's CPU: two runs' real TorchScript artifacts timed against each other.

The records' own timings are made up to be doubtful (flagged busy, or a false call); what decides is the real
re-measure of the real files, which is what these tests check.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from bench.compare import Rules, Side, compare_runs
from bench.compare.remeasure import Remeasure, doubtful, remeasure
from bench.compare.verdicts import CellComparison, inconclusive_line
from bench.engines.artifacts import save_torchscript
from bench.records import ArtifactRefs, Record
from bench.store.artifacts import ArtifactFolder, digest
from bench.store.database import Run
from targets import BUILTIN_TARGETS
from tests.bench.record_factory import model_record, timing

WIDTH = 64
SHAPE = (1, WIDTH)
# A short protocol: the paired interval of two chains is a few percent wide after a second of rounds.
TIMING = {"budget_s": 2.0, "warmup_s": 0.1, "min_rounds": 6}


def _chain(layers: int, path: Path) -> Path:
    torch.manual_seed(0)
    model = torch.nn.Sequential(*(m for _ in range(layers) for m in (torch.nn.Linear(WIDTH, WIDTH), torch.nn.ReLU())))
    return save_torchscript(model.eval(), torch.randn(*SHAPE), path)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A reference chain, two separately saved copies of a 40-layer candidate (A/A), and a 60-layer one (+50%)."""
    folder = tmp_path_factory.mktemp("chains")
    return {
        "reference": _chain(80, folder / "reference.pt"),
        "a": _chain(40, folder / "a.pt"),
        "a again": _chain(40, folder / "a-again.pt"),
        "slower": _chain(60, folder / "slower.pt"),
    }


def _record(reference: Path, candidate: Path, **flags: object) -> Record:
    refs = ArtifactRefs(baseline=digest(reference), candidate=digest(candidate), input_shape=SHAPE)
    return model_record("prune.channel", {"macs_removed": 0.5}, artifacts=refs, timing=timing(2.0, **flags))


def _side(name: str, records: list[Record]) -> Side:
    run = Run(name, "", None, "finished", {}, {}, {"commit": None, "dirty": None})
    return Side(name, run, tuple(records))


def _kept(tmp_path: Path, name: str, *paths: Path) -> ArtifactFolder:
    folder = ArtifactFolder(tmp_path / name)
    for path in paths:
        folder.keep(path)
    return folder


def _busy(cell: CellComparison) -> bool:
    """Whether the machine was busy in every re-measure session: then the only honest verdict is inconclusive."""
    return cell.verdict == "inconclusive" and "the machine was busy or throttled in all" in cell.why


def _remeasured(base: Record, cand: Record, base_folder: ArtifactFolder, cand_folder: ArtifactFolder):
    comparison = compare_runs(_side("base", [base]), _side("cand", [cand]), Rules())
    how = Remeasure((base_folder,), (cand_folder,), TIMING, dict(BUILTIN_TARGETS), tries=3)
    (cell,) = remeasure(comparison, how, io.StringIO()).cells
    return comparison.cells[0], cell


def test_a_busy_cell_whose_two_runs_timed_equal_artifacts_is_judged_unchanged(tmp_path: Path, files) -> None:
    base = _record(files["reference"], files["a"])
    cand = _record(files["reference"], files["a again"], busy=True, other_cpu_cores=1.5)
    before, after = _remeasured(
        base, cand, _kept(tmp_path, "base", files["reference"], files["a"]),
        _kept(tmp_path, "cand", files["reference"], files["a again"]),
    )  # fmt: skip
    assert before.verdict == "inconclusive" and doubtful(before)
    if _busy(after):
        pytest.skip("other work kept this machine busy through every re-measure session")
    assert after.verdict == "unchanged", after.why
    assert after.metrics["latency"].shown.endswith("paired") and "re-measured paired" in after.why
    low, high = after.metrics["latency"].low, after.metrics["latency"].high
    assert low is not None and high is not None and 1 / 1.05 <= low <= 1 <= high <= 1.05


def test_a_real_slowdown_of_the_candidate_artifact_is_called_a_regression(tmp_path: Path, files) -> None:
    base = _record(files["reference"], files["a"])
    cand = _record(files["reference"], files["slower"], noisy=True)
    _, after = _remeasured(
        base, cand, _kept(tmp_path, "base", files["reference"], files["a"]),
        _kept(tmp_path, "cand", files["reference"], files["slower"]),
    )  # fmt: skip
    if _busy(after):
        pytest.skip("other work kept this machine busy through every re-measure session")
    assert after.verdict == "regressed"
    assert after.metrics["latency"].outcome == "regressed" and after.metrics["speedup"].outcome == "regressed"
    assert after.metrics["latency"].low > 1.2  # 50% more layers: far beyond the threshold's half


def test_a_changed_reference_is_timed_too_and_the_speedup_divides_it_out(tmp_path: Path, files) -> None:
    # CAND's reference is the slower chain: its candidate is as fast as before, but its speedup rose.
    base = _record(files["a"], files["a"])
    cand = _record(files["slower"], files["a again"], busy=True)
    _, after = _remeasured(
        base, cand, _kept(tmp_path, "base", files["a"]), _kept(tmp_path, "cand", files["slower"], files["a again"])
    )
    if _busy(after):
        pytest.skip("other work kept this machine busy through every re-measure session")
    assert after.metrics["latency"].outcome == "unchanged"
    assert after.metrics["speedup"].outcome == "improved" and after.metrics["speedup"].value > 1.2


def test_a_cell_whose_artifacts_were_not_kept_stays_inconclusive_and_says_why(tmp_path: Path, files) -> None:
    base = _record(files["reference"], files["a"])
    cand = _record(files["reference"], files["a again"], busy=True)
    _, after = _remeasured(base, cand, ArtifactFolder(tmp_path / "none"), _kept(tmp_path, "cand", files["a again"]))
    assert after.verdict == "inconclusive"
    assert "not re-measured: artifacts not kept: BASE's candidate" in after.why
    line = inconclusive_line([after], 0.10)
    judged = "INCONCLUSIVE: 1 of 1 cells could not be judged on this machine"
    assert line == f"{judged} (1 not re-measured, artifacts not kept)"


def test_an_inconclusive_share_at_or_below_the_limit_passes_and_above_it_does_not() -> None:
    quiet = [model_record("none", {"i": i}) for i in range(10)]
    busy = model_record("none", {"i": 9}, timing=timing(1.0, busy=True, other_cpu_cores=1.5))
    comparison = compare_runs(_side("base", quiet), _side("cand", [*quiet[:9], busy]), Rules())
    assert comparison.counts()["inconclusive"] == 1
    assert inconclusive_line(comparison.cells, 0.10) is None
    line = inconclusive_line(comparison.cells, 0.05)
    judged = "INCONCLUSIVE: 1 of 10 cells could not be judged on this machine"
    assert line == f"{judged} (1 timing flagged busy, not re-measured)"
