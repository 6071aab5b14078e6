"""`python -m bench report [RUN_ID]`: print a stored run's summary and write its Markdown and HTML reports.

`--format md|html|both` picks the files, `--wide` prints every column instead of the summary that fits 120
columns, and `--open` prints the HTML report's path and opens it in a browser when the machine has one.
"""

from __future__ import annotations

import os
import sys
import webbrowser
from collections.abc import Sequence
from pathlib import Path

from bench.cli.support import Parser, Verbs, readable, store_flag, wide_flag, writable_folder
from bench.errors import BenchError

__all__ = ["register", "report_formats", "write_run_report"]


def report_formats(text: str) -> tuple[str, ...]:
    """`md`, `html` or `both` -> the formats `write_report` writes."""
    from bench.report.write import FORMATS

    choices = (*FORMATS, "both")
    if text not in choices:
        raise BenchError(f"--format must be one of {', '.join(choices)}; got '{text}'")
    return FORMATS if text == "both" else (text,)


def register(verbs: Verbs) -> None:
    """Add the `report` verb to the CLI's subparsers."""
    verbs.add_parser(
        "report", help="print a stored run's summary and write its Markdown and HTML reports", arguments=_arguments
    )


def _arguments(report: Parser) -> None:
    from bench.report.write import FORMATS  # with matplotlib and torch: imported when `report` parses

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
    report.set_defaults(
        handler=lambda args: write_run_report(
            args.store, args.run_id, args.output, args.format, wide=args.wide, open_html=args.open
        )
    )


def write_run_report(
    store: Path, run_id: str | None = None, output: Path | None = None, formats: Sequence[str] | None = None,
    *, wide: bool = False, open_html: bool = False,
) -> int:  # fmt: skip
    """Print the summary of run `run_id` (the newest when None) of the store at `store`, and write its reports.

    Args:
        output: The folder for the reports and their figures; None: `runs/RUN_ID` beside the store, and when
            that folder cannot be written, the summary is printed alone with a note (a read-only store is readable).
        formats: Which files to write (`bench.report.write.FORMATS`, all when None).
        wide: Print every column instead of the summary that fits 120 columns.
        open_html: Also write the HTML report, print its path and open it where a browser is.

    Returns:
        0.
    """
    from bench.report.write import FORMATS, write_report
    from bench.store.database import read_store

    with read_store(store) as opened:
        run = opened.run(run_id)
        records = readable(opened, opened.records(run.run_id))
    formats = tuple(dict.fromkeys([*(formats or FORMATS), *(["html"] if open_html else [])]))
    directory = output if output is not None else store.parent / "runs" / run.run_id
    if not writable_folder(directory):
        if output is not None:
            raise BenchError(f"--output: cannot write into {directory}: not a writable folder")
        print(f"note: {directory} is not writable, so no report file is written; give --output DIR", file=sys.stderr)
        write_report(run, records, None, sys.stdout, wide=wide)
        return 0
    files = write_report(run, records, directory, sys.stdout, wide=wide, formats=formats)
    if open_html and files.html is not None:
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
