"""`python -m bench history`: print each matching cell's series across runs and commits, and plot it.

The nightly CI calls `python -m bench history --store S --metric latency --output DIR` after each run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench.cli.support import readable, store_flag, writable_folder
from bench.errors import BenchError
from bench.history import METRICS, Filters, build_history, plot_history, render_table
from bench.store.database import read_store

__all__ = ["register"]


def register(verbs: Any) -> None:
    """Add the `history` verb to argparse's subparsers `verbs`."""
    history = verbs.add_parser("history", help="show each stored cell's metric across runs and commits, and plot it")
    history.add_argument("--model", help="only cells of this model (a name or an fnmatch pattern)")
    history.add_argument("--compressor", help="only cells of this compressor (a name or an fnmatch pattern)")
    history.add_argument("--target", help="only cells measured on this target (a name or an fnmatch pattern)")
    history.add_argument("--metric", choices=list(METRICS), default="latency", help="what to follow (default: latency)")
    history.add_argument(
        "--output", type=Path, help="folder for history-METRIC.png (default: history/ beside the store)"
    )
    store_flag(history)
    history.set_defaults(handler=_history)


def _history(args: argparse.Namespace) -> int:
    with read_store(args.store) as store:
        runs = readable(store, store.runs())
        measured = readable(store, store.measured())
    history = build_history(runs, measured, METRICS[args.metric], Filters(args.model, args.compressor, args.target))
    directory = args.output if args.output is not None else args.store.parent / "history"
    if not writable_folder(directory):
        if args.output is not None:
            raise BenchError(f"--output: cannot write into {directory}: not a writable folder")
        sys.stdout.write(render_table(history))
        print(f"note: {directory} is not writable, so the plot is not written; give --output DIR", file=sys.stderr)
        return 0
    sys.stdout.write(render_table(history))
    path = plot_history(history, directory / f"history-{args.metric}.png")
    print(f"plot: {path}")
    return 0
