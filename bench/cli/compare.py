"""`python -m bench compare BASE CAND`: is the candidate run slower, less accurate or larger than the base?

Exit status 0 when no cell regressed in a `--fail-on` metric, 1 when one did, 2 for a user error (one line).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from bench.cli.support import store_flag, write_output
from bench.compare import METRICS, Rules, compare_runs, parse_fail_on, resolve
from bench.compare.render import markdown, terminal
from bench.errors import BenchError

__all__ = ["register"]


def _fraction(flag: str, low: float, high: float):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not low <= value < high:
            raise BenchError(f"{flag} expects a number in [{low:g}, {high:g}), got '{text}'")
        return value

    return parse


def register(verbs: Any) -> None:
    """Add the `compare` verb to the CLI's subparsers."""
    compare = verbs.add_parser(
        "compare", help="compare two runs cell by cell: latency, speedup, top-1 and bytes, noise-aware"
    )
    sides = "a run id in --store, a store file (its newest run, or PATH@RUN_ID), or a JSON export"
    compare.add_argument("base", metavar="BASE", help=f"the run to compare against: {sides}")
    compare.add_argument("cand", metavar="CAND", help=f"the candidate run: {sides}")
    store_flag(compare)
    compare.add_argument(
        "--threshold", type=_fraction("--threshold", 0.0, 1.0), default=0.05,
        help="smallest latency or speedup change that counts, as a fraction (default: 0.05 = 5%%)",
    )  # fmt: skip
    compare.add_argument(
        "--accuracy-tolerance", type=_fraction("--accuracy-tolerance", 0.0, 100.0), default=0.5,
        help="smallest top-1 change that counts, in percentage points (default: 0.5)",
    )  # fmt: skip
    compare.add_argument(
        "--fail-on", type=parse_fail_on, default=METRICS,
        help=f"comma-separated metrics whose regressions fail (exit 1); default: {','.join(METRICS)}",
    )  # fmt: skip
    compare.add_argument("--markdown", type=Path, metavar="FILE", help="also write the comparison as Markdown")
    compare.add_argument("--strict-machine", action="store_true", help="refuse records of different machines (exit 2)")
    compare.add_argument("--all", action="store_true", help="list unchanged cells too")
    compare.set_defaults(handler=_compare)


def _compare(args: argparse.Namespace) -> int:
    rules = Rules(
        threshold=args.threshold, accuracy_tolerance=args.accuracy_tolerance, fail_on=tuple(args.fail_on),
        strict_machine=args.strict_machine,
    )  # fmt: skip
    base = resolve(args.base, args.store, "BASE")
    cand = resolve(args.cand, args.store, "CAND")
    comparison = compare_runs(base, cand, rules)
    if comparison.machine_note:
        print(f"warning: {comparison.machine_note}", file=sys.stderr)
    if args.markdown is not None:
        write_output(markdown(comparison), args.markdown, "--markdown")
    sys.stdout.write(terminal(comparison, args.all))
    return 1 if comparison.failed else 0
