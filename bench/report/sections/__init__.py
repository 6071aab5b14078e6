"""The report's study sections: what a study's cells answer beyond speed and size (the ticket against its
control, one distillation against another, one model that switches width against one pruned model per budget).

Each section is a function of the run's model records and the report's folder that returns Markdown lines
(figures drawn into the folder), and nothing when the run has no cells of its kind; the terminal shows each
section's headings and sentences, the tables and figures stay in the report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from bench.records import ModelRecord
from bench.report.sections.exit import exit_section
from bench.report.sections.lottery import lottery_section
from bench.report.sections.recovery import recovery_section
from bench.report.sections.width import width_section

__all__ = ["SECTIONS", "study_sections", "summary_lines"]

Section = Callable[[list[ModelRecord], Path | None], list[str]]

SECTIONS: tuple[Section, ...] = (lottery_section, recovery_section, width_section, exit_section)
"""Every study section, in the order the report shows them."""


def study_sections(records: list[ModelRecord], directory: Path | None) -> list[str]:
    """The Markdown of every section that has cells in `records`."""
    return [line for section in SECTIONS for line in section(records, directory)]


def summary_lines(markdown: Sequence[str]) -> list[str]:
    """What the terminal shows of the sections: headings (without their marks) and sentences; no tables, no
    figures, no blank runs."""
    shown: list[str] = []
    for line in markdown:
        if line.startswith(("|", "![")) or (not line and (not shown or not shown[-1])):
            continue
        shown.append(line.lstrip("#").strip() if line.startswith("#") else line)
    return ["", *shown] if shown else []
