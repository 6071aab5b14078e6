"""`python -m bench compare BASE CAND`: is the candidate run slower, less accurate or larger than the base?

Exit status 0 when no cell regressed in a `--fail-on` metric, 1 when one did, 2 for a user error (one line).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bench.cli.support import Parser, Verbs, store_flag, write_output
from bench.errors import BenchError
from bench.store.database import DEFAULT_STORE

if TYPE_CHECKING:
    from bench.compare import Rules

__all__ = ["register", "compare_stored_runs", "fraction"]


def fraction(flag: str, low: float, high: float) -> Callable[[str], float]:
    """A parser of a number in [low, high) for `flag`, whose error names the flag and the text."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not low <= value < high:
            raise BenchError(f"{flag} expects a number in [{low:g}, {high:g}), got '{text}'")
        return value

    return parse


def register(verbs: Verbs) -> None:
    """Add the `compare` verb to the CLI's subparsers."""
    verbs.add_parser(
        "compare", help="compare two runs cell by cell: latency, speedup, top-1 and bytes, noise-aware",
        arguments=_arguments,
    )  # fmt: skip


def _arguments(compare: Parser) -> None:
    from bench.compare import METRICS, parse_fail_on  # with scipy's statistics: imported when `compare` parses

    sides = "a run id in --store, a store file (its newest run, or PATH@RUN_ID), or a JSON export"
    compare.add_argument("base", metavar="BASE", help=f"the run to compare against: {sides}")
    compare.add_argument("cand", metavar="CAND", help=f"the candidate run: {sides}")
    store_flag(compare)
    compare.add_argument(
        "--threshold", type=fraction("--threshold", 0.0, 1.0), default=0.05,
        help="smallest latency or speedup change that counts, as a fraction (default: 0.05 = 5%%)",
    )  # fmt: skip
    compare.add_argument(
        "--accuracy-tolerance", type=fraction("--accuracy-tolerance", 0.0, 100.0), default=0.5,
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


def compare_stored_runs(
    base: str, cand: str, rules: Rules | None = None, *, store: Path = DEFAULT_STORE, markdown: Path | None = None,
    show_all: bool = False,
) -> int:  # fmt: skip
    """Compare the run `cand` with the run `base`, cell by cell, and print the verdicts.

    Args:
        base: The run to compare against: a run id in `store`, a store file (its newest run, or PATH@RUN_ID), or
            a JSON export.
        cand: The candidate run, named the same ways.
        rules: How strictly (`Rules()` when None).
        markdown: Also write the comparison as Markdown into this file.
        show_all: List unchanged cells too.

    Returns:
        1 when a cell regressed in a metric of `rules.fail_on`, else 0.
    """
    from bench.compare import Rules, compare_runs, resolve
    from bench.compare.render import markdown as render_markdown
    from bench.compare.render import terminal

    comparison = compare_runs(resolve(base, store, "BASE"), resolve(cand, store, "CAND"), rules or Rules())
    if comparison.machine_note:
        print(f"warning: {comparison.machine_note}", file=sys.stderr)
    if markdown is not None:
        write_output(render_markdown(comparison), markdown, "--markdown")
    sys.stdout.write(terminal(comparison, show_all))
    return 1 if comparison.failed else 0


def _compare(args: argparse.Namespace) -> int:
    from bench.compare import Rules

    rules = Rules(
        threshold=args.threshold, accuracy_tolerance=args.accuracy_tolerance, fail_on=tuple(args.fail_on),
        strict_machine=args.strict_machine,
    )  # fmt: skip
    return compare_stored_runs(args.base, args.cand, rules, store=args.store, markdown=args.markdown, show_all=args.all)
