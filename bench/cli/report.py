"""`python -m bench report [RUN_ID]`: print a stored run's summary and write its Markdown and HTML reports.

`--format md|html|both` picks the files, `--wide` prints every column instead of the summary that fits 120
columns, and `--open` prints the HTML report's path and opens it in a browser when the machine has one.
"""

from __future__ import annotations

import argparse
import os
import sys
import webbrowser
from pathlib import Path
from typing import Any

from bench.cli.support import readable, store_flag, writable_folder
from bench.errors import BenchError
from bench.report.write import FORMATS, write_report
from bench.store.database import read_store

__all__ = ["register", "report_formats", "wide_flag"]

_CHOICES = (*FORMATS, "both")


def report_formats(text: str) -> tuple[str, ...]:
    """`md`, `html` or `both` -> the formats `write_report` writes."""
    if text not in _CHOICES:
        raise BenchError(f"--format must be one of {', '.join(_CHOICES)}; got '{text}'")
    return FORMATS if text == "both" else (text,)


def wide_flag(parser: argparse.ArgumentParser) -> None:
    """`--wide`, shared by `run`, `study` and `report`."""
    parser.add_argument(
        "--wide", action="store_true",
        help="print every column of every table (wider than a screen) instead of the 120-column summary",
    )  # fmt: skip


def register(verbs: Any) -> None:
    """Add the `report` verb to the CLI's subparsers."""
    report = verbs.add_parser("report", help="print a stored run's summary and write its Markdown and HTML reports")
    report.add_argument("run_id", nargs="?", help="run id (default: the newest)")
    report.add_argument(
        "--output", type=Path, help="folder for the reports and their figures (default: runs/RUN_ID beside the store)"
    )
    report.add_argument(
        "--format", type=report_formats, default=FORMATS, metavar="{md,html,both}",
        help="which report files to write (default: both)",
    )  # fmt: skip
    report.add_argument(
        "--open", action="store_true",
        help="print the HTML report's path and open it in a browser when this machine has one",
    )  # fmt: skip
    wide_flag(report)
    store_flag(report)
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    with read_store(args.store) as store:
        run = store.run(args.run_id)
        records = readable(store, store.records(run.run_id))
    formats = tuple(dict.fromkeys([*args.format, *(["html"] if args.open else [])]))
    directory = args.output if args.output is not None else args.store.parent / "runs" / run.run_id
    if not writable_folder(directory):
        if args.output is not None:
            raise BenchError(f"--output: cannot write into {directory}: not a writable folder")
        print(f"note: {directory} is not writable, so no report file is written; give --output DIR", file=sys.stderr)
        write_report(run, records, None, sys.stdout, wide=args.wide)
        return 0
    files = write_report(run, records, directory, sys.stdout, wide=args.wide, formats=formats)
    if args.open and files.html is not None:
        _open(files.html)
    return 0


def _open(path: Path) -> None:
    """Print the path (a browser may not be there: a server, CI, an SSH session) and open it where one is."""
    print(f"open: {path.resolve().as_uri()}")
    if not _has_display():
        print("note: no display here, so no browser was started; open the file above where you read reports")
        return
    try:
        opened = webbrowser.open(path.resolve().as_uri())
    except webbrowser.Error:
        opened = False
    if not opened:
        print("note: no browser found here; open the file above where you read reports")


def _has_display() -> bool:
    """A graphical session (X11, Wayland) or macOS / Windows, where `webbrowser` starts a real browser rather
    than a text one inside this terminal."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
