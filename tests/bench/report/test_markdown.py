"""Figures in the report's Markdown: drawn once, and again only when what they show or the code that draws them
changed."""

from __future__ import annotations

import io
import json
from functools import partial
from pathlib import Path

import pytest

from bench.compare.sources import from_export
from bench.report import markdown
from bench.report.markdown import FIGURE_DIGESTS, figure_markdown, slug
from bench.report.write import write_report

REFERENCE = Path(__file__).parents[3] / "results" / "reference" / "x86_64-amd-epyc-2cpu-t1"
DRAWN: list[str] = []


def _draw(text: object, path: Path) -> Path:
    DRAWN.append(str(text))
    path.write_text(str(text))
    return path


@pytest.fixture(autouse=True)
def _nothing_drawn_yet() -> None:
    DRAWN.clear()


def test_a_figure_is_drawn_once_then_again_only_when_its_inputs_change(tmp_path: Path) -> None:
    first = figure_markdown(tmp_path, "a.png", "alt", "caption", partial(_draw, "one"))
    assert first == ["![alt](a.png)", "", "*caption*", ""] and DRAWN == ["one"]
    assert figure_markdown(tmp_path, "a.png", "alt", "caption", partial(_draw, "one")) == first
    assert DRAWN == ["one"], "the same call drew the figure again"
    figure_markdown(tmp_path, "a.png", "alt", "caption", partial(_draw, "two"))
    assert DRAWN == ["one", "two"] and (tmp_path / "a.png").read_text() == "two"
    (tmp_path / "a.png").unlink()
    figure_markdown(tmp_path, "a.png", "alt", "caption", partial(_draw, "two"))
    assert DRAWN == ["one", "two", "two"], "a deleted figure was not drawn again"
    assert set(json.loads((tmp_path / FIGURE_DIGESTS).read_text())) == {"a.png"}


def test_a_figure_another_run_drew_from_the_same_call_is_copied_not_drawn(tmp_path: Path) -> None:
    first, second = tmp_path / "run-1", tmp_path / "run-2"
    first.mkdir()
    figure_markdown(first, "a.png", "alt", "caption", partial(_draw, "one"))
    figure_markdown(second, "a.png", "alt", "caption", partial(_draw, "one"))
    assert DRAWN == ["one"] and (second / "a.png").read_text() == "one"
    figure_markdown(second, "b.png", "alt", "caption", partial(_draw, "two"))
    assert DRAWN == ["one", "two"], "a figure no run drew was not drawn"


def test_a_change_to_the_drawing_code_draws_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figure_markdown(tmp_path, "a.png", "alt", "caption", partial(_draw, "one"))
    monkeypatch.setattr(markdown, "_code_digest", lambda: "another version of the suite")
    figure_markdown(tmp_path, "a.png", "alt", "caption", partial(_draw, "one"))
    assert DRAWN == ["one", "one"]


def test_a_call_that_cannot_be_named_is_always_drawn(tmp_path: Path) -> None:
    for _ in range(2):
        figure_markdown(tmp_path, "a.png", "alt", "caption", lambda path: _draw("lambda", path))
        figure_markdown(tmp_path, "b.png", "alt", "caption", partial(_draw, object()))  # repr holds an address
    assert DRAWN.count("lambda") == 2 and len(DRAWN) == 4


def test_no_folder_no_figure() -> None:
    assert figure_markdown(None, "a.png", "alt", "caption", partial(_draw, "one")) == [] and DRAWN == []


def test_slug_names_files_and_anchors() -> None:
    assert slug("mnist_cnn, cpu ts t1 b1") == "mnist-cnn-cpu-ts-t1-b1"


def test_a_report_written_again_from_the_same_records_draws_no_figure(tmp_path: Path) -> None:
    side = from_export(REFERENCE / "studies" / "distill" / "records.json", "reference")
    write_report(side.run, list(side.records), tmp_path, io.StringIO())
    figures = sorted(tmp_path.glob("*.png"))
    assert figures
    drawn_at = {path: path.stat().st_mtime_ns for path in figures}
    report = (tmp_path / "report.md").read_text()
    write_report(side.run, list(side.records), tmp_path, io.StringIO())
    assert {path: path.stat().st_mtime_ns for path in figures} == drawn_at, "an unchanged figure was drawn again"
    assert (tmp_path / "report.md").read_text() == report
