"""What every report section keeps to, so that the report is built by walking tables of sections and a new section
is one module and one table entry, with no renderer that names it.

A section gets records (the run's, or one model's for a section inside a model's part) and the report's folder
(None: draw and write nothing), and says at once what each output shows of it: the Markdown lines (the HTML page
renders the same lines), the terminal text that fits the summary's width, and the wide terminal text (`--wide`).
Computing all three in one call keeps them from disagreeing about which cells a section has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bench.records import ModelRecord, Record
from bench.report.summary import wrapped

__all__ = ["Section", "SectionText", "StudySection", "combined", "rendered", "summary_lines"]


@dataclass(frozen=True)
class SectionText:
    """What one section (or several, `combined`) shows in each output; all empty when it has nothing to show.

    Attributes:
        markdown: Lines of the Markdown report, figures already drawn into the report's folder.
        terminal: The summary's text, no wider than the summary (`summary.wrapped`), each line ending in a newline.
        wide: The `--wide` text: every column of every table.
    """

    markdown: list[str]
    terminal: str
    wide: str


class Section(Protocol):
    """One part of the report, in one of the tables of `bench.report.sections`."""

    @property
    def name(self) -> str:
        """A short, unique name ("layers", "lottery"): what tests and errors call the section by."""
        ...

    def render(self, records: Sequence[Record], directory: Path | None) -> SectionText:
        """Every output of the section from `records`, its figures drawn into `directory` (None: none drawn).

        Records of kinds or cells the section does not show are ignored; without any it shows, every field is
        empty, so the report walks every section of a table on every run.
        """
        ...


def _joined(texts: Iterable[str]) -> str:
    """Terminal texts one after the other, one blank line between them where one ends and the next starts blank.

    Each text starts with the blank line that sets it apart; a study's text ends with one too (its Markdown ends
    with a blank line), and printing both would leave a blank run the terminal never shows.
    """
    out = ""
    for text in texts:
        out += text[1:] if out.endswith("\n\n") and text.startswith("\n") else text
    return out


def combined(texts: Iterable[SectionText]) -> SectionText:
    """Several sections' outputs as one, in order: what one place of the report (a model's part, the layer
    sweeps, the studies) shows."""
    shown = list(texts)
    return SectionText(
        [line for text in shown for line in text.markdown],
        _joined(text.terminal for text in shown),
        _joined(text.wide for text in shown),
    )


def rendered(sections: Iterable[Section], records: Sequence[Record], directory: Path | None) -> SectionText:
    """Every section of a table rendered from the same records, in the table's order, as one."""
    return combined(section.render(records, directory) for section in sections)


def summary_lines(markdown: Sequence[str]) -> list[str]:
    """What the terminal shows of a study: headings (without their marks) and sentences; no tables, no figures,
    no blank runs."""
    shown: list[str] = []
    for line in markdown:
        if line.startswith(("|", "![")) or (not line and (not shown or not shown[-1])):
            continue
        shown.append(line.lstrip("#").strip() if line.startswith("#") else line)
    return ["", *shown] if shown else []


def _text(lines: Iterable[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


@dataclass(frozen=True)
class StudySection:
    """A study's section: its Markdown from the run's model records; the terminal shows its headings and sentences
    (`summary_lines`), wrapped to the summary's width unless wide, since its tables are too wide for a terminal.

    Attributes:
        name: The section's name (`Section.name`).
        markdown: The study's Markdown lines from the run's model records and the report's folder; none when the
            run has no cells of its kind.
    """

    name: str
    markdown: Callable[[list[ModelRecord], Path | None], list[str]]

    def render(self, records: Sequence[Record], directory: Path | None) -> SectionText:
        """See `Section.render`."""
        md = self.markdown([r for r in records if isinstance(r, ModelRecord)], directory)
        shown = summary_lines(md)
        fitted = [part for line in shown for part in (wrapped(line) if line else [""])]
        return SectionText(md, _text(fitted), _text(shown))
