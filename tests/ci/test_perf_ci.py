"""`python -m bench ci`: the perf job's script end to end on a tiny real matrix, and its decisions on their own."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bench.cli.ci import GateSettings, GateSteps, gate
from bench.errors import BenchError
from bench.store.database import read_store
from tests.bench.conftest import run_main, run_subprocess

TINY = """
models = ["digits_cnn"]
engines = ["torchscript"]
finetune_steps = 0
[compressors]
none = {}
"prune.unstructured" = { sparsity = [0.9], scope = "layer", execution = ["dense", "csr"] }
"prune.channel" = { macs_removed = [0.5] }
[timing]
budget_s = 1.0
[artifacts]
keep = true
[layers]
models = []
"""


def _runs(path: Path) -> list[str]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [row[0] for row in db.execute("SELECT run_id FROM runs ORDER BY rowid")]
    finally:
        db.close()


def _night(tmp_path: Path, night: int, data: Path, matrix: Path) -> tuple[int, str, Path]:
    shards = tmp_path / f"shards{night}"
    for k in (1, 2):
        done = run_subprocess("ci", "shard", f"{k}/2", "--matrix", str(matrix), "--out", str(shards))
        assert done.returncode == 0, done.stderr
    out = tmp_path / f"out{night}"
    done = run_subprocess(
        "ci", "gate", *map(str, sorted(shards.glob("*.sqlite"))), "--data", str(data), "--kind", "tiny",
        "--out", str(out), "--keep",
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr, out


@pytest.mark.slow
def test_two_nights_of_the_perf_job_on_a_tiny_matrix(tmp_path: Path) -> None:
    matrix = tmp_path / "tiny.toml"
    matrix.write_text(TINY)
    data = tmp_path / "data"

    code, output, out = _night(tmp_path, 1, data, matrix)
    assert code == 0, output
    summary = (out / "summary.md").read_text()
    assert "no baseline yet" in summary and "kept run merged-" in output
    assert (out / "report" / "report.md").is_file() and (out / "history" / "history-speedup.png").stat().st_size
    assert len(_runs(out / "run.sqlite")) == 3  # two shards and the run that merges them
    first_baseline = _runs(data / "tiny" / "baseline.sqlite")[-1]
    # The files its cells timed are kept beside the baseline: the next night re-measures doubtful cells against them.
    with read_store(data / "tiny" / "baseline.sqlite") as store:
        refs = [record.artifacts for record in store.records(first_baseline) if record.artifacts is not None]
    named = {sha for ref in refs for sha in (ref.baseline, ref.candidate)}
    assert named and {path.name.split(".")[0] for path in (data / "tiny" / "artifacts").iterdir()} == named

    code, output, out = _night(tmp_path, 2, data, matrix)
    summary = (out / "summary.md").read_text()
    # 3: a machine too busy to re-measure on says so; it is never a pass, and the baseline stays.
    assert code in (0, 1, 3), output
    assert code != 3 or "INCONCLUSIVE: " in output
    assert "Benchmark comparison" in summary and first_baseline in summary and "4 cells" in summary
    assert "history of 2 kept run(s)" in summary.lower()
    kept = sorted((data / "tiny" / "runs").glob("*.sqlite"))
    assert len(kept) == (2 if code == 0 else 1)
    history = out / "history.sqlite"
    assert len([r for r in _runs(history) if r.startswith("merged-")]) == 2


def _steps(compare_code: int, calls: list[str]) -> GateSteps:
    """The gate's real steps, each noted in `calls`, with `compare` answering `compare_code`: what the gate decides
    from each answer."""
    real = GateSteps()

    def noted(name: str, step: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> int:
            calls.append(name)
            return step(*args, **kwargs)

        return call

    def compare(base: str, cand: str, rules: Any, *, markdown: Path, remeasure: bool, history: Any) -> int:
        assert remeasure  # the gate always re-measures doubtful cells
        calls.append("compare")
        markdown.write_text("## compared\n")
        return compare_code

    return GateSteps(
        merge=noted("merge", real.merge), report=noted("report", real.report), compare=compare,
        history=noted("history", real.history),
    )  # fmt: skip


@pytest.fixture
def shard_store(tmp_path: Path) -> Path:
    from bench.store.database import open_store
    from tests.bench.record_factory import model_record

    path = tmp_path / "shard-1-of-1.sqlite"
    with open_store(path) as store:
        store.start_run("20260101-000000-aaaa", {"models": ["m"]}, [], {}, {"commit": "c" * 40, "dirty": False}, None)
        store.add_record("20260101-000000-aaaa", model_record())
        store.finish_run("20260101-000000-aaaa", "finished")
    return path


@pytest.mark.parametrize(
    ("compare_code", "refresh", "kept"), [(0, False, True), (1, False, False), (1, True, True), (3, False, False)]
)
def test_a_regressed_run_stays_out_of_the_baseline_unless_refreshed(
    tmp_path: Path, shard_store: Path, compare_code: int, refresh: bool, kept: bool
) -> None:
    data = tmp_path / "data"
    (data / "cpu").mkdir(parents=True)
    baseline = data / "cpu" / "baseline.sqlite"
    before = b"the previous baseline (read by compare only, which answers compare_code here)"
    baseline.write_bytes(before)
    calls: list[str] = []
    settings = GateSettings((shard_store,), data, "cpu", tmp_path / "out", keep=True, refresh=refresh)
    assert gate(settings, _steps(compare_code, calls)) == compare_code
    assert calls == ["merge", "report", "compare", "merge", "history"]
    assert (baseline.read_bytes() != before) is kept
    assert len(list((data / "cpu" / "runs").glob("*.sqlite"))) == (1 if kept else 0)


def test_a_kept_baseline_takes_its_artifacts_along_and_drops_the_previous_ones(tmp_path: Path) -> None:
    from bench.records import ArtifactRefs
    from bench.store.artifacts import ArtifactFolder, digest
    from bench.store.database import open_store
    from tests.bench.record_factory import model_record

    shards = tmp_path / "shards"
    shards.mkdir()
    files = [shards / "reference.pt", shards / "candidate.pt"]
    for number, path in enumerate(files):
        path.write_bytes(f"artifact {number}".encode())
    ArtifactFolder(shards / "artifacts").keep(files[0])  # a shard keeps what it timed beside its store
    ArtifactFolder(shards / "artifacts").keep(files[1])
    refs = ArtifactRefs(baseline=digest(files[0]), candidate=digest(files[1]), input_shape=(1, 4))
    shard = shards / "shard-1-of-1.sqlite"
    with open_store(shard) as store:
        store.start_run("20260101-000000-aaaa", {"models": ["m"]}, [], {}, {"commit": "c" * 40, "dirty": False}, None)
        store.add_record("20260101-000000-aaaa", model_record(artifacts=refs))
        store.finish_run("20260101-000000-aaaa", "finished")
    data = tmp_path / "data"
    old = data / "cpu" / "artifacts" / f"{'0' * 64}.pt"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"the previous baseline's artifact")
    settings = GateSettings((shard,), data, "cpu", tmp_path / "out", keep=True)
    assert gate(settings, _steps(0, [])) == 0
    kept = sorted(path.name for path in (data / "cpu" / "artifacts").iterdir())
    assert kept == sorted(f"{sha}.pt" for sha in (refs.baseline, refs.candidate))
    assert (tmp_path / "out" / "artifacts" / f"{refs.candidate}.pt").read_bytes() == b"artifact 1"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["ci", "gate", "missing.sqlite", "--data", "d", "--kind", "cpu"], "not found: missing.sqlite"),
        (["ci", "gate", "SHARD", "--data", "d", "--kind", "../up"], "--kind names a folder"),
        (["ci", "shard", "x/2", "--out", "OUT"], "--shard expects K/N"),
        (["ci", "suite", "--data", "d", "--kind", "cpu", "--out", "OUT", "--limit", "0.1%"], "whole percentage"),
        (["ci", "shard", "4/3", "--out", "OUT"], "--shard expects K/N"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, shard_store: Path, argv: list[str], fragment: str) -> None:
    argv = [str(shard_store) if a == "SHARD" else str(tmp_path / "o") if a == "OUT" else a for a in argv]
    done = run_main(argv)
    assert done.code == 2 and done.err.count("\n") == 1 and fragment in done.err, done.err
    assert not (tmp_path / "o").exists()


def test_the_gate_refuses_an_empty_shard_list() -> None:
    with pytest.raises(BenchError, match="none given"):
        gate(GateSettings((), Path("d"), "cpu", Path("o")))
