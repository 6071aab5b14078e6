"""Reports built from the store only: a summary per model in the terminal, a Markdown and a self-contained HTML
report with figures on disk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bench.errors import BenchError
from bench.records import Record
from bench.report.html import render_html
from bench.report.parts import markdown_lines, report_parts
from bench.report.summary import wrapped
from bench.report.tables import layer_table, machine_table, model_table
from bench.store.database import Run

__all__ = ["FORMATS", "ReportFiles", "write_report", "machine_table", "model_table", "layer_table"]


@dataclass(frozen=True)
class ReportFiles:
    """The files a report wrote (None: that format was not asked for, or nothing is written)."""

    md: Path | None = None
    html: Path | None = None


FORMATS = ("md", "html")
"""The report's file formats; `both` on the command line asks for all of them."""


def write_report(
    run: Run, records: list[Record], directory: Path | None, stream: TextIO, *, wide: bool = False,
    formats: Sequence[str] = FORMATS,
) -> ReportFiles:  # fmt: skip
    """Print the run's summary and finding to `stream`; write the report's files and figures into `directory`.

    Args:
        directory: where the report goes; None prints to `stream` only (a read-only place, nothing written).
        wide: print every column of every table (the files always have them) instead of the summary that fits
            `labels.SCREEN_WIDTH` columns.
        formats: which of `FORMATS` to write; the figures are drawn for either.
    """
    if not records:
        raise BenchError(
            f"run {run.run_id} has no records ({run.status} before its first cell finished): nothing to report"
        )
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    parts = report_parts(run, records, directory)
    stream.write(parts.terminal_wide if wide else parts.terminal)
    for text in parts.findings:
        stream.write("\n" + "\n".join(_wrapped([text], wide)) + "\n")
    if directory is None:
        return ReportFiles()
    files = ReportFiles(
        md=_write(directory / "report.md", "\n".join(markdown_lines(parts)) + "\n") if "md" in formats else None,
        html=_write(directory / "report.html", render_html(parts, directory)) if "html" in formats else None,
    )
    written = [str(path) for path in (files.md, files.html) if path is not None]
    if written:
        stream.write("\nreport: " + "\n        ".join(written) + "\n")
    return files


def _wrapped(lines: list[str], wide: bool) -> list[str]:
    return lines if wide else [part for line in lines for part in (wrapped(line) if line else [""])]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
