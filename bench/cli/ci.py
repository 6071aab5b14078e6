"""`python -m bench ci {shard,suite,gate}`: the scheduled perf job's two steps (see `bench.cli.perf_ci`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.cli.perf_ci import CI_MATRIX, GateSettings, gate, run_shard, suite_benchmarks
from bench.cli.support import Parser

__all__ = ["register"]


def register(verbs: Any) -> None:
    ci = verbs.add_parser("ci", help="the perf CI job: measure a shard, then gate the merged run against a baseline")
    steps = ci.add_subparsers(dest="ci_step", required=True, parser_class=Parser)

    shard = steps.add_parser("shard", help="measure the K-th of N shares of the CI matrix into OUT/shard-K-of-N.sqlite")
    shard.add_argument("shard", metavar="K/N", help="which share, e.g. 2/3")
    shard.add_argument("--matrix", type=Path, default=CI_MATRIX, help=f"matrix file (default: {CI_MATRIX})")
    shard.add_argument("--out", type=Path, default=Path("perf-out"), help="folder for the shard's store")
    shard.add_argument("--targets", help="comma-separated targets, instead of the matrix file's")
    shard.set_defaults(handler=_shard)

    suite = steps.add_parser("suite", help="benchmark the suite's own hot paths and compare with the kept ones")
    suite.add_argument("--data", type=Path, required=True, help="folder of kept runs and baselines (data branch)")
    suite.add_argument("--kind", required=True, help="machine kind the kept benchmarks belong to")
    suite.add_argument("--out", type=Path, default=Path("perf-out"), help="folder for suite-benchmarks.json")
    suite.add_argument("--keep", action="store_true", help="keep the benchmarks for the next comparison")
    suite.add_argument("--limit", default="25%", help="slowdown of a benchmark's fastest round that fails (25%%)")
    suite.set_defaults(handler=lambda args: suite_benchmarks(args.data, args.kind, args.out, args.keep, args.limit))

    check = steps.add_parser("gate", help="merge shards, report, compare with the baseline, plot history, keep")
    check.add_argument("shards", nargs="+", type=Path, metavar="SHARD.sqlite", help="the shards' stores")
    check.add_argument("--data", type=Path, required=True, help="folder of kept runs and baselines (data branch)")
    check.add_argument("--kind", required=True, help="machine kind the baseline belongs to, e.g. ubuntu-latest-cpu")
    check.add_argument("--out", type=Path, default=Path("perf-out"), help="folder for the merged store, report...")
    check.add_argument("--keep", action="store_true", help="keep this run as the next baseline unless it regressed")
    check.add_argument("--refresh", action="store_true", help="with --keep: keep it even if it regressed")
    check.add_argument("--metric", choices=["latency", "speedup", "top1", "bytes"], default="speedup",
                       help="what the history figure plots (default: speedup, comparable across machines)")  # fmt: skip
    check.add_argument("--threshold", help="passed to compare")
    check.add_argument("--fail-on", help="passed to compare")
    check.add_argument("--strict-machine", action="store_true", help="passed to compare")
    check.set_defaults(handler=_gate)


def _main() -> Any:
    from bench.cli.main import main  # the command line registers this module: import it when a step runs

    return main


def _shard(args: argparse.Namespace) -> int:
    extra = ["--targets", args.targets] if args.targets else []
    return run_shard(_main(), args.shard, args.matrix, args.out, extra)


def _gate(args: argparse.Namespace) -> int:
    flags: list[str] = []
    for flag, value in (("--threshold", args.threshold), ("--fail-on", args.fail_on)):
        if value is not None:
            flags += [flag, value]
    if args.strict_machine:
        flags.append("--strict-machine")
    settings = GateSettings(
        shards=tuple(args.shards), data=args.data, kind=args.kind, out=args.out, keep=args.keep,
        refresh=args.refresh, metric=args.metric, compare_flags=tuple(flags),
    )  # fmt: skip
    return gate(_main(), settings)
