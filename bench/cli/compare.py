"""`python -m bench compare BASE CAND`: is the candidate run slower, less accurate or larger than the base?

Exit status 0 when no cell regressed in a `--fail-on` metric, 1 when one did, 2 for a user error (one line).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bench.cli.support import Parser, Verbs, store_flag, write_output
from bench.errors import BenchError
from bench.store.database import DEFAULT_STORE

if TYPE_CHECKING:
    from bench.compare import Comparison, Rules, Side

__all__ = ["register", "compare_stored_runs", "fraction", "INCONCLUSIVE"]

INCONCLUSIVE = 3
"""The exit status of a comparison that judged too few cells: neither a pass nor a regression (a retry, then a
failure, in CI)."""
# Sessions per re-measured cell: beyond this, a machine that decides nothing will not decide.
MAX_TRIES = 20


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
    compare.add_argument(
        "--remeasure", action="store_true",
        help="time BASE's and CAND's kept artifacts of every doubtful cell against each other on this machine",
    )  # fmt: skip
    compare.add_argument(
        "--remeasure-tries", type=_tries, default=3, metavar="N", help="sessions per re-measured cell (default: 3)"
    )
    compare.add_argument(
        "--artifacts", type=Path, action="append", default=[], metavar="DIR",
        help="another folder of kept artifacts for --remeasure (besides artifacts/ beside each store; repeatable)",
    )  # fmt: skip
    compare.add_argument(
        "--max-inconclusive", type=fraction("--max-inconclusive", 0.0, 1.0), default=0.10, metavar="SHARE",
        help="share of cells that may stay inconclusive before the comparison exits 3 (default: 0.10)",
    )  # fmt: skip
    compare.set_defaults(handler=_compare)


def compare_stored_runs(
    base: str, cand: str, rules: Rules | None = None, *, store: Path = DEFAULT_STORE, markdown: Path | None = None,
    show_all: bool = False, remeasure: bool = False, tries: int = 3, artifacts: Sequence[Path] = (),
    history: Sequence[Side] = (),
) -> int:  # fmt: skip
    """Compare the run `cand` with the run `base`, cell by cell, and print the verdicts.

    Args:
        base: The run to compare against: a run id in `store`, a store file (its newest run, or PATH@RUN_ID), or
            a JSON export.
        cand: The candidate run, named the same ways.
        rules: How strictly (`Rules()` when None).
        markdown: Also write the comparison as Markdown into this file.
        show_all: List unchanged cells too.
        history: Earlier runs of the same matrix and machine kind, oldest first: each cell's own run-to-run scatter
            in them raises the change it must show (`bench.compare.history_scatter`).
        remeasure: Time both runs' kept artifacts of every doubtful cell against each other on this machine
            (`bench.compare.remeasure`), `tries` sessions at most per cell; the artifacts are looked up in
            `artifacts/` beside each side's store, then in the folders `artifacts`.

    Returns:
        1 when a cell regressed in a metric of `rules.fail_on`; else 3 when more than `rules.max_inconclusive` of
        the cells could not be judged; else 0.
    """
    from bench.compare import Rules, compare_runs, resolve
    from bench.compare.render import markdown as render_markdown
    from bench.compare.render import terminal

    sides = resolve(base, store, "BASE"), resolve(cand, store, "CAND")
    comparison = compare_runs(*sides, rules or Rules(), history=history)
    if comparison.machine_note:
        print(f"warning: {comparison.machine_note}", file=sys.stderr)
    if remeasure:
        comparison = _remeasured(comparison, tries, artifacts)
    if markdown is not None:
        write_output(render_markdown(comparison), markdown, "--markdown")
    sys.stdout.write(terminal(comparison, show_all))
    if comparison.failed:
        return 1
    return INCONCLUSIVE if comparison.undecided else 0


def _remeasured(comparison: Comparison, tries: int, extra: Sequence[Path]) -> Comparison:
    """The comparison with its doubtful cells re-measured, from each side's artifacts and the folders `extra`."""
    from bench.compare.remeasure import Remeasure, remeasure
    from bench.store.artifacts import ArtifactFolder, artifacts_beside
    from targets import spec_from_table

    def folders(side: Side) -> tuple[ArtifactFolder, ...]:
        beside = [artifacts_beside(side.store)] if side.store is not None else []
        return tuple(ArtifactFolder(path) for path in [*beside, *extra])

    config = comparison.cand.run.config
    defined = config.get("targets")
    defined = defined if isinstance(defined, dict) else {}
    specs = {name: spec_from_table(name, table) for name, table in defined.items() if isinstance(table, dict)}
    timing = config.get("timing")
    timing = timing if isinstance(timing, dict) else {}
    how = Remeasure(folders(comparison.base), folders(comparison.cand), timing, specs, tries)
    return remeasure(comparison, how)


def _compare(args: argparse.Namespace) -> int:
    from bench.compare import Rules

    rules = Rules(
        threshold=args.threshold, accuracy_tolerance=args.accuracy_tolerance, fail_on=tuple(args.fail_on),
        strict_machine=args.strict_machine, max_inconclusive=args.max_inconclusive,
    )  # fmt: skip
    return compare_stored_runs(
        args.base, args.cand, rules, store=args.store, markdown=args.markdown, show_all=args.all,
        remeasure=args.remeasure, tries=args.remeasure_tries, artifacts=args.artifacts,
    )  # fmt: skip


def _tries(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_TRIES:
        raise BenchError(f"--remeasure-tries expects a whole number of sessions in 1..{MAX_TRIES}, got '{text}'")
    return int(text)
