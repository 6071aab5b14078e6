"""`python -m bench history`: print each matching cell's series across runs and commits, and plot it.

The nightly CI calls `python -m bench history --store S --metric latency --output DIR` after each run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.cli.support import Parser, Verbs, readable, store_flag, writable_folder
from bench.errors import BenchError

__all__ = ["register", "show_history"]


def register(verbs: Verbs) -> None:
    """Add the `history` verb to argparse's subparsers `verbs`."""
    verbs.add_parser(
        "history", help="show each stored cell's metric across runs and commits, and plot it", arguments=_arguments
    )


def _arguments(history: Parser) -> None:
    from bench.history import METRICS  # with matplotlib: imported when `history` parses

    history.add_argument("--model", help="only cells of this model (a name or an fnmatch pattern)")
    history.add_argument("--compressor", help="only cells of this compressor (a name or an fnmatch pattern)")
    history.add_argument("--target", help="only cells measured on this target (a name or an fnmatch pattern)")
    history.add_argument("--metric", choices=list(METRICS), default="latency", help="what to follow (default: latency)")
    history.add_argument(
        "--output", type=Path, help="folder for history-METRIC.png (default: history/ beside the store)"
    )
    store_flag(history)
    history.set_defaults(
        handler=lambda args: show_history(
            args.store, args.metric, args.output, model=args.model, compressor=args.compressor, target=args.target
        )
    )


def show_history(
    store: Path, metric: str = "latency", output: Path | None = None, *, model: str | None = None,
    compressor: str | None = None, target: str | None = None,
) -> int:  # fmt: skip
    """Print the series of `metric` of every stored cell that matches the filters, and plot them.

    Args:
        store: The store of the runs to follow.
        metric: A name of `bench.history.METRICS`.
        output: The folder for `history-METRIC.png`; None: `history/` beside the store, and when that folder
            cannot be written, the table is printed alone with a note.
        model, compressor, target: Names or fnmatch patterns the cells must match (None: any).

    Returns:
        0.
    """
    from bench.history import METRICS, Filters, build_history, plot_history, render_table
    from bench.store.database import read_store

    with read_store(store) as opened:
        runs = readable(opened, opened.runs())
        measured = readable(opened, opened.measured())
    history = build_history(runs, measured, METRICS[metric], Filters(model, compressor, target))
    directory = output if output is not None else store.parent / "history"
    if not writable_folder(directory):
        if output is not None:
            raise BenchError(f"--output: cannot write into {directory}: not a writable folder")
        sys.stdout.write(render_table(history))
        print(f"note: {directory} is not writable, so the plot is not written; give --output DIR", file=sys.stderr)
        return 0
    sys.stdout.write(render_table(history))
    path = plot_history(history, directory / f"history-{metric}.png")
    print(f"plot: {path}")
    return 0
