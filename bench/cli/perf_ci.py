"""The scheduled perf job, as one script the workflow calls: measure a shard, then gate the whole matrix.

A workflow file only says *where* things run; what they do is here, so it runs the same on a laptop, in a test and
on a CI runner. The two steps are verbs of their own, composed from the public ones (`run --shard`, `merge`,
`report`, `compare`, `history`):

- `shard K/N`: measure the K-th of N deterministic shares of the CI matrix into `OUT/shard-K-of-N.sqlite`. Failed
  cells are the gate's business (it reports them as `failed`), so a finished run exits 0.
- `suite`: the suite's own hot paths (`tests/perf`, pytest-benchmark), compared by pytest-benchmark itself with
  the kept JSON of the machine kind; it fails when a benchmark's fastest round is slower by more than the limit
  (the minimum, because a shared runner's noise only ever adds time).
- `gate SHARD...`: merge the shard stores into one run, write its report, compare it with the stored baseline of
  the same machine kind, plot the history of every kept run, and write the Markdown summary (appended to
  `$GITHUB_STEP_SUMMARY` when set). With `--keep` the run becomes the next baseline when it did not regress (or
  always, with `--refresh`); the caller publishes the data folder.

The data folder (a checkout of the data branch in CI) holds, per machine kind, `runs/RUN_ID.sqlite` (every kept
run, one small store each, so the folder grows linearly and identical files share one git object) and
`baseline.sqlite` (the newest kept run).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.config.shards import parse_shard
from bench.errors import BenchError
from bench.store.database import read_store

__all__ = ["GateSettings", "run_shard", "gate", "suite_benchmarks"]

CI_MATRIX = Path("ci") / "perf.toml"
# What a finished `run` returns when some of its cells failed; the gate reports those cells.
_SOME_CELLS_FAILED = 1

Verb = Callable[[Sequence[str]], int]
"""`bench.cli.main.main`, passed in so the steps run the very verbs a user runs (and this module does not import the
command line that imports it)."""


_KIND = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def run_shard(verb: Verb, shard: str, matrix: Path, out: Path, extra: Sequence[str] = ()) -> int:
    """Measure one shard of `matrix` into a store of its own under `out`; 0 when the run finished."""
    share = parse_shard(shard)
    out.mkdir(parents=True, exist_ok=True)
    store = out / f"shard-{share.index}-of-{share.count}.sqlite"
    started = time.monotonic()
    code = verb(["run", "--config", str(matrix), "--shard", shard, "--store", str(store), *extra])
    if code in (0, _SOME_CELLS_FAILED):
        print(f"shard {shard}: {store} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    if code == _SOME_CELLS_FAILED:
        print(f"shard {shard}: some cells failed; the gate reports them", file=sys.stderr)
        return 0
    return code


@dataclass(frozen=True)
class GateSettings:
    """Where the gate reads and writes, and what it passes on to `compare` and `history`."""

    shards: tuple[Path, ...]
    data: Path
    kind: str
    out: Path
    keep: bool = False
    refresh: bool = False
    metric: str = "speedup"
    compare_flags: tuple[str, ...] = ()

    @property
    def kept(self) -> Path:
        return self.data / self.kind

    @property
    def baseline(self) -> Path:
        return self.kept / "baseline.sqlite"


def gate(verb: Verb, settings: GateSettings) -> int:
    """Merge, report, compare with the baseline, plot the history, keep the run; the compare's exit status.

    Exit 0 when nothing regressed (or there was no baseline yet), 1 on a regression, 2 on bad input.
    """
    if not _KIND.fullmatch(settings.kind):
        raise BenchError(
            f"--kind names a folder of the data branch: letters, digits, '.', '_', '-'; got '{settings.kind}'"
        )
    missing = [str(path) for path in settings.shards if not path.is_file()]
    if not settings.shards or missing:
        raise BenchError(f"ci gate expects the shard stores to merge; not found: {', '.join(missing) or 'none given'}")
    out = settings.out
    out.mkdir(parents=True, exist_ok=True)
    merged = out / "run.sqlite"
    merged.unlink(missing_ok=True)
    _step(verb, ["merge", *map(str, settings.shards), "--into", str(merged)])
    with read_store(merged) as store:
        run_id = store.run().run_id
    _step(verb, ["report", "--store", str(merged), "--output", str(out / "report")])

    summary = out / "summary.md"
    if settings.baseline.is_file():
        code = verb(
            ["compare", str(settings.baseline), str(merged), "--markdown", str(summary), *settings.compare_flags]
        )
        if code not in (0, 1):
            return code
    else:
        code = 0
        summary.write_text(
            f"## Perf: no baseline yet for `{settings.kind}`\n\nRun `{run_id}` was measured and not compared;"
            " kept on main, it becomes the baseline.\n"
        )

    kept_runs = sorted((settings.kept / "runs").glob("*.sqlite"))
    history = out / "history.sqlite"
    history.unlink(missing_ok=True)
    _step(verb, ["merge", *map(str, kept_runs), str(merged), "--into", str(history)])
    _step(verb, ["history", "--store", str(history), "--metric", settings.metric, "--output", str(out / "history")])

    if settings.keep and (code == 0 or settings.refresh):
        _keep(merged, run_id, settings)
    elif settings.keep:
        print(f"run {run_id} regressed: the baseline stays (refresh it with --refresh)", file=sys.stderr)
    _publish_summary(summary, run_id, len(kept_runs) + 1)
    return code


def suite_benchmarks(data: Path, kind: str, out: Path, keep: bool, limit: str = "25%") -> int:
    """Run the suite's hot-path benchmarks, fail on a slowdown beyond `limit` against the kept ones, keep them."""
    _check_kind(kind)
    if not re.fullmatch(r"[1-9][0-9]*%", limit):
        raise BenchError(f"--limit is a whole percentage of slowdown that fails, e.g. 25%; got '{limit}'")
    out.mkdir(parents=True, exist_ok=True)
    result = out / "suite-benchmarks.json"
    kept = data / kind / "suite-benchmarks.json"
    argv = [sys.executable, "-m", "pytest", "-m", "perf", "tests/perf", f"--benchmark-json={result}"]
    if kept.is_file():
        argv += [f"--benchmark-compare={kept}", f"--benchmark-compare-fail=min:{limit}"]
    else:
        print(f"no kept suite benchmarks for {kind} yet: measured, not compared", file=sys.stderr)
    code = subprocess.run(argv, check=False).returncode
    if keep and code == 0:
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result, kept)
        print(f"kept the suite's benchmarks of {kind} in {kept}", file=sys.stderr)
    return code


def _check_kind(kind: str) -> None:
    if not _KIND.fullmatch(kind):
        raise BenchError(f"--kind names a folder of the data branch (letters, digits, '.', '_', '-'), got '{kind}'")


def _step(verb: Verb, argv: list[str]) -> None:
    """Run one verb that must succeed; its own one-line error has been printed when it does not."""
    code = verb(argv)
    if code != 0:
        raise BenchError(f"ci gate: `python -m bench {argv[0]}` failed (exit {code}), see the line above")


def _keep(merged: Path, run_id: str, settings: GateSettings) -> None:
    runs = settings.kept / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(merged, runs / f"{run_id}.sqlite")
    shutil.copyfile(merged, settings.baseline)
    print(f"kept run {run_id} as the baseline of {settings.kind} in {settings.kept}", file=sys.stderr)


def _publish_summary(summary: Path, run_id: str, runs: int) -> None:
    """Add the history figure's place to the summary, and hand it to GitHub's job summary when there is one."""
    with summary.open("a") as text:
        text.write(
            f"\nHistory of {runs} kept run(s) up to `{run_id}`: `history/` in the job's artifact; report: `report/`.\n"
        )
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a") as target:
            target.write(summary.read_text())
