"""`python -m bench ci {shard,suite,gate}`: the scheduled perf job, as one script the workflow calls.

A workflow file only says *where* things run; what they do is here, so it runs the same on a laptop, in a test and
on a CI runner. The steps are composed from the public verbs (`run --shard`, `merge`, `report`, `compare`,
`history`), called as the functions behind them:

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
run, one small store each, so the folder grows linearly and identical files share one git object),
`baseline.sqlite` (the newest kept run) and `artifacts/`: the files the baseline timed, by content, which the gate
times the run's own against for every doubtful cell (`bench.compare.remeasure`); only the newest baseline's are kept,
within `--artifact-cap-mb`, and they are too large for git (the workflow keeps them in a cache).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.cli import compare as compare_verb
from bench.cli import history as history_verb
from bench.cli import merge as merge_verb
from bench.cli import report as report_verb
from bench.cli import run as run_verb
from bench.cli.support import Parser, Verbs
from bench.config.shards import parse_shard
from bench.errors import BenchError
from bench.records import ModelRecord
from bench.store.artifacts import DEFAULT_CAP_BYTES, ArtifactFolder, artifacts_beside
from bench.store.database import read_store

if TYPE_CHECKING:
    from bench.compare import Rules

__all__ = ["register", "CI_MATRIX", "GateSettings", "GateSteps", "run_shard", "gate", "suite_benchmarks"]

CI_MATRIX = Path("ci") / "perf.toml"
# What a finished `run` returns when some of its cells failed; the gate reports those cells.
_SOME_CELLS_FAILED = 1

_KIND = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def register(verbs: Verbs) -> None:
    """Add the `ci` verb and its steps to the CLI's subparsers."""
    verbs.add_parser(
        "ci", help="the perf CI job: measure a shard, then gate the merged run against a baseline", arguments=_arguments
    )


def _arguments(ci: Parser) -> None:
    steps = ci.add_subparsers(dest="ci_step", required=True, parser_class=Parser)
    steps.add_parser(
        "shard", help="measure the K-th of N shares of the CI matrix into OUT/shard-K-of-N.sqlite",
        arguments=_shard_arguments,
    )  # fmt: skip
    steps.add_parser(
        "suite", help="benchmark the suite's own hot paths and compare with the kept ones", arguments=_suite_arguments
    )
    steps.add_parser(
        "gate", help="merge shards, report, compare with the baseline, plot history, keep", arguments=_gate_arguments
    )


def _shard_arguments(shard: Parser) -> None:
    shard.add_argument("shard", metavar="K/N", help="which share, e.g. 2/3")
    shard.add_argument("--matrix", type=Path, default=CI_MATRIX, help=f"matrix file (default: {CI_MATRIX})")
    shard.add_argument("--out", type=Path, default=Path("perf-out"), help="folder for the shard's store")
    shard.add_argument("--targets", help="comma-separated targets, instead of the matrix file's")
    shard.set_defaults(handler=lambda args: run_shard(args.shard, args.matrix, args.out, args.targets))


def _suite_arguments(suite: Parser) -> None:
    suite.add_argument("--data", type=Path, required=True, help="folder of kept runs and baselines (data branch)")
    suite.add_argument("--kind", required=True, help="machine kind the kept benchmarks belong to")
    suite.add_argument("--out", type=Path, default=Path("perf-out"), help="folder for suite-benchmarks.json")
    suite.add_argument("--keep", action="store_true", help="keep the benchmarks for the next comparison")
    suite.add_argument("--limit", default="25%", help="slowdown of a benchmark's fastest round that fails (25%%)")
    suite.set_defaults(handler=lambda args: suite_benchmarks(args.data, args.kind, args.out, args.keep, args.limit))


def _gate_arguments(check: Parser) -> None:
    from bench.compare import parse_fail_on
    from bench.history import METRICS

    check.add_argument("shards", nargs="+", type=Path, metavar="SHARD.sqlite", help="the shards' stores")
    check.add_argument("--data", type=Path, required=True, help="folder of kept runs and baselines (data branch)")
    check.add_argument("--kind", required=True, help="machine kind the baseline belongs to, e.g. ubuntu-latest-cpu")
    check.add_argument("--out", type=Path, default=Path("perf-out"), help="folder for the merged store, report...")
    check.add_argument("--keep", action="store_true", help="keep this run as the next baseline unless it regressed")
    check.add_argument("--refresh", action="store_true", help="with --keep: keep it even if it regressed")
    check.add_argument("--metric", choices=list(METRICS), default="speedup",
                       help="what the history figure plots (default: speedup, comparable across machines)")  # fmt: skip
    check.add_argument("--threshold", type=compare_verb.fraction("--threshold", 0.0, 1.0), help="passed to compare")
    check.add_argument("--fail-on", type=parse_fail_on, help="passed to compare")
    check.add_argument("--strict-machine", action="store_true", help="passed to compare")
    check.add_argument(
        "--max-inconclusive", type=compare_verb.fraction("--max-inconclusive", 0.0, 1.0),
        help="passed to compare: share of cells that may stay inconclusive before the gate exits 3 (0.10)",
    )  # fmt: skip
    check.add_argument(
        "--artifact-cap-mb", type=int, default=DEFAULT_CAP_BYTES // 2**20, metavar="MB",
        help="size limit (MiB) of the baseline's kept artifacts in the data folder (default: %(default)s)",
    )  # fmt: skip
    check.set_defaults(handler=_gate)


def _gate(args: argparse.Namespace) -> int:
    from bench.compare import Rules

    given = {"threshold": args.threshold, "fail_on": args.fail_on, "max_inconclusive": args.max_inconclusive}
    chosen = {key: value for key, value in given.items() if value is not None}
    rules = Rules(**chosen, strict_machine=args.strict_machine)
    settings = GateSettings(
        shards=tuple(args.shards), data=args.data, kind=args.kind, out=args.out, keep=args.keep,
        refresh=args.refresh, metric=args.metric, rules=rules, artifact_cap_bytes=args.artifact_cap_mb * 2**20,
    )  # fmt: skip
    return gate(settings)


def run_shard(shard: str, matrix: Path, out: Path, targets: str | None = None) -> int:
    """Measure one shard of `matrix` into a store of its own under `out`; 0 when the run finished.

    Args:
        shard: Which share, `K/N`.
        matrix: The matrix file.
        out: The folder of the shard's store, `shard-K-of-N.sqlite`.
        targets: Comma-separated targets to measure on instead of the matrix file's.
    """
    share = parse_shard(shard)
    out.mkdir(parents=True, exist_ok=True)
    store = out / f"shard-{share.index}-of-{share.count}.sqlite"
    overrides: dict[str, Any] = {"store": store, "force": False, "shard": share}
    if targets:
        overrides["targets"] = run_verb.list_of(str, "--targets")(targets)
    started = time.monotonic()
    code = run_verb.measure_matrix(matrix, overrides)
    print(f"shard {shard}: {store} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    if code == _SOME_CELLS_FAILED:
        print(f"shard {shard}: some cells failed; the gate reports them", file=sys.stderr)
        return 0
    return code


@dataclass(frozen=True)
class GateSettings:
    """Where the gate reads and writes, what `history` plots, and how `compare` judges (its defaults when None)."""

    shards: tuple[Path, ...]
    data: Path
    kind: str
    out: Path
    keep: bool = False
    refresh: bool = False
    metric: str = "speedup"
    rules: Rules | None = None
    artifact_cap_bytes: int = DEFAULT_CAP_BYTES

    @property
    def kept(self) -> Path:
        return self.data / self.kind

    @property
    def baseline(self) -> Path:
        return self.kept / "baseline.sqlite"

    @property
    def baseline_artifacts(self) -> ArtifactFolder:
        """The baseline's kept artifacts, which the gate times the run's against (`artifacts/` beside it)."""
        return ArtifactFolder(artifacts_beside(self.baseline), self.artifact_cap_bytes)


@dataclass(frozen=True)
class GateSteps:
    """The verbs the gate composes, as the functions behind them; a test swaps one to see what the gate decides."""

    merge: Callable[[Sequence[Path], Path], int] = field(default=merge_verb.merge_into)
    report: Callable[[Path, str | None, Path], int] = field(default=report_verb.write_run_report)
    compare: Callable[..., int] = field(default=compare_verb.compare_stored_runs)
    history: Callable[[Path, str, Path], int] = field(default=history_verb.show_history)


def gate(settings: GateSettings, steps: GateSteps | None = None) -> int:
    """Merge, report, compare with the baseline, plot the history, keep the run; the compare's exit status.

    Every doubtful cell is re-measured on this machine, the baseline's kept artifacts against the run's
    (`bench.compare.remeasure`). Exit 0 when nothing regressed (or there was no baseline yet), 1 on a regression, 2 on
    bad input, 3 when too many cells could not be judged (`compare`'s INCONCLUSIVE: a retry, then a failure).
    """
    steps = steps or GateSteps()
    _check_kind(settings.kind)
    missing = [str(path) for path in settings.shards if not path.is_file()]
    if not settings.shards or missing:
        raise BenchError(f"ci gate expects the shard stores to merge; not found: {', '.join(missing) or 'none given'}")
    out = settings.out
    out.mkdir(parents=True, exist_ok=True)
    merged = out / "run.sqlite"
    merged.unlink(missing_ok=True)
    _step("merge", lambda: steps.merge(settings.shards, merged))
    run_artifacts = ArtifactFolder(artifacts_beside(merged), cap_bytes=sys.maxsize)  # bounded by the shards' caps
    for shard in settings.shards:
        run_artifacts.add_from(ArtifactFolder(artifacts_beside(shard)))
    with read_store(merged) as store:
        run_id = store.run().run_id
    _step("report", lambda: steps.report(merged, None, out / "report"))

    summary = out / "summary.md"
    kept_runs = sorted((settings.kept / "runs").glob("*.sqlite"))
    if settings.baseline.is_file():
        from bench.compare.history_scatter import load_history

        earlier = load_history(kept_runs)  # each cell's own run-to-run scatter raises the change it must show
        code = steps.compare(
            str(settings.baseline), str(merged), settings.rules, markdown=summary, remeasure=True, history=earlier
        )
    else:
        code = 0
        summary.write_text(
            f"## Perf: no baseline yet for `{settings.kind}`\n\nRun `{run_id}` was measured and not compared;"
            " kept on main, it becomes the baseline.\n"
        )

    history = out / "history.sqlite"
    history.unlink(missing_ok=True)
    _step("merge", lambda: steps.merge([*kept_runs, merged], history))
    _step("history", lambda: steps.history(history, settings.metric, out / "history"))

    if settings.keep and (code == 0 or settings.refresh):
        _keep(merged, run_id, settings)
    elif settings.keep:
        why = "could not be judged" if code == compare_verb.INCONCLUSIVE else "regressed"
        print(f"run {run_id} {why}: the baseline stays (refresh it with --refresh)", file=sys.stderr)
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


def _step(verb: str, step: Callable[[], int]) -> None:
    """Run one verb that must succeed; when it does not, its own one-line error comes first, then the gate's."""
    try:
        code = step()
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        code = 2
    if code != 0:
        raise BenchError(f"ci gate: `python -m bench {verb}` failed (exit {code}), see the line above")


def _keep(merged: Path, run_id: str, settings: GateSettings) -> None:
    """Keep the run as the next baseline, with the artifacts its records name (and no others) beside it."""
    runs = settings.kept / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(merged, runs / f"{run_id}.sqlite")
    shutil.copyfile(merged, settings.baseline)
    print(f"kept run {run_id} as the baseline of {settings.kind} in {settings.kept}", file=sys.stderr)
    with read_store(merged) as store:
        refs = [record.artifacts for record in store.records(run_id) if isinstance(record, ModelRecord)]
    named = {sha for ref in refs if ref is not None for sha in (ref.baseline, ref.candidate)}
    kept = settings.baseline_artifacts
    freed = kept.prune(named)
    source = ArtifactFolder(artifacts_beside(merged))
    found = [(sha, path) for sha in sorted(named) if (path := source.find(sha)) is not None]
    left_out = [sha for sha, path in found if kept.keep(path, sha) is None]  # one already kept is not copied again
    print(
        f"kept {len(named) - len(left_out)} of its {len(named)} artifacts in {kept.path} ({kept.size_bytes() / 1e6:.0f}"
        f" MB, {freed / 1e6:.0f} MB of the previous baseline's removed)"
        + (f"; {len(left_out)} left out by the {settings.artifact_cap_bytes / 2**20:.0f} MiB cap" if left_out else ""),
        file=sys.stderr,
    )


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
