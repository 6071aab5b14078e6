"""The contract every report section keeps, checked over both tables so a new section gets it for free, and how
sections' outputs join."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.records import ModelRecord, Record
from bench.report.sections import MODEL_SECTIONS, RUN_SECTIONS, Section, SectionText, StudySection, combined, rendered
from bench.report.sections.base import summary_lines
from bench.report.summary import wrapped
from tests.bench.record_factory import model_record

EVERY_SECTION: list[Section] = [*MODEL_SECTIONS, *(section for table in RUN_SECTIONS.values() for section in table)]
EMPTY = SectionText([], "", "")


def test_every_section_has_a_name_of_its_own() -> None:
    names = [section.name for section in EVERY_SECTION]
    assert len(set(names)) == len(names) and all(names)


@pytest.mark.parametrize("section", EVERY_SECTION, ids=lambda section: section.name)
def test_a_run_without_cells_of_its_kind_shows_nothing(section: Section, tmp_path: Path) -> None:
    plain: list[Record] = [model_record("none", top1=0.9), model_record("prune.channel", {"macs_removed": 0.5})]
    assert section.render([], None) == EMPTY
    assert section.render(plain, tmp_path) == EMPTY
    assert not list(tmp_path.iterdir())


def _study(name: str, sentence: str) -> StudySection:
    def markdown(records: list[ModelRecord], directory: Path | None) -> list[str]:
        return [f"## {name}", "", "| a |", "|---|", "| 1 |", "", sentence, ""]

    return StudySection(name, markdown)


def test_studies_print_as_the_terminal_shows_their_markdown_together() -> None:
    long = "word " * 40
    first, second = _study("first", "One sentence."), _study("second", long.strip())
    together = first.markdown([], None) + second.markdown([], None)
    shown = rendered([first, second], [], None)
    assert shown.markdown == together
    assert shown.wide == "".join(f"{line}\n" for line in summary_lines(together))
    assert shown.wide.startswith("\nfirst\n\nOne sentence.\n\nsecond\n") and "\n\n\n" not in shown.wide
    fitted = [part for line in shown.wide.splitlines() for part in (wrapped(line) if line else [""])]
    assert shown.terminal == "".join(f"{line}\n" for line in fitted) != shown.wide


def test_a_section_with_nothing_to_show_leaves_no_trace() -> None:
    study = _study("only", "A sentence.").render([], None)
    assert combined([EMPTY, study, EMPTY]) == study
    assert combined([]) == EMPTY
