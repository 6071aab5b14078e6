"""The HTML report: one self-contained file, every figure of the Markdown report embedded with its caption, and
the summary rows the page's filters and sorting work on."""

from __future__ import annotations

import dataclasses
import io
import re
from html.parser import HTMLParser

import pytest

from bench.labels import FAMILIES
from bench.records import Accuracy, ModelRecord
from bench.report.write import ReportFiles, write_report
from bench.store.database import Run
from tests.bench.record_factory import model_record

RUN = Run("r1", "2026-01-01T00:00:00", "2026-01-01T00:01:00", "finished", {"timing": {"budget_s": 2.0}}, {},
          {"commit": "abc123", "dirty": False})  # fmt: skip


class _Page(HTMLParser):
    """Every element's tag and attributes, in document order, plus the text of figcaptions."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.captions: list[str] = []
        self._in_caption = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self._in_caption = tag == "figcaption"
        if self._in_caption:
            self.captions.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_caption = self._in_caption and tag != "figcaption"

    def handle_data(self, data: str) -> None:
        if self._in_caption:
            self.captions[-1] += data

    def tags(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.elements if tag == name]


def _records() -> list[ModelRecord]:
    records = []
    for engine in ("torchscript", "onnxruntime"):
        for compressor, params, speedup in (
            ("none", {}, 1.0), ("prune.unstructured", {"sparsity": 0.5, "execution": "dense"}, 1.0),
            ("prune.unstructured", {"sparsity": 0.9, "execution": "dense"}, 1.02),
            ("prune.channel", {"macs_removed": 0.5}, 1.8), ("prune.channel", {"macs_removed": 0.9}, 4.0),
        ):  # fmt: skip
            record = model_record(compressor, params, engine=engine, speedup=speedup, theoretical=2.0, top1=0.9)
            records.append(dataclasses.replace(
                record, accuracy=Accuracy(top1=0.9 - 0.1 * speedup / 4, baseline=0.9, before_recovery=None,
                                          note=None, images=1000),
            ))  # fmt: skip
    failed = model_record("quant.int8", {}, status="failed", error="RuntimeError: <no kernel> & more")
    return [*records, failed]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> ReportFiles:
    """Both reports of one small run, written once (drawing the figures is most of a report's time)."""
    return write_report(RUN, _records(), tmp_path_factory.mktemp("report"), io.StringIO())


def test_html_report_is_one_self_contained_file_with_every_figure_and_caption(files: ReportFiles) -> None:
    assert files.md is not None and files.html is not None and files.html.name == "report.html"
    html = files.html.read_text()
    page = _Page()
    page.feed(html)
    images = page.tags("img")
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", files.md.read_text())
    assert images and len(images) == len(linked), "every figure of the Markdown report is in the HTML one"
    assert all((attrs.get("src") or "").startswith("data:image/png;base64,") for attrs in images)
    assert len(page.tags("figure")) == len(images) and len(page.captions) == len(images)
    assert all("Measured on cpu" in caption for caption in page.captions), page.captions
    for tag in ("script", "link", "img", "iframe"):
        for attrs in page.tags(tag):
            assert not re.match(r"(https?:)?//", attrs.get("src") or attrs.get("href") or ""), (tag, attrs)
    assert "<style>" in html and "</script>" in html


def test_summary_table_has_one_row_per_cell_with_the_filters_keys(files: ReportFiles) -> None:
    records, html = _records(), files.html
    assert html is not None
    page = _Page()
    page.feed(html.read_text())
    rows = [attrs for attrs in page.tags("tr") if "data-family" in attrs]
    assert len(rows) == len(records)
    assert {attrs["data-family"] for attrs in rows} <= set(FAMILIES)
    assert {attrs["data-engine"] for attrs in rows} == {"torchscript", "onnxruntime"}
    tables = page.tags("table")
    assert any(attrs.get("id") == "summary-m" and "filterable" in (attrs.get("class") or "") for attrs in tables)
    assert all("sortable" in (attrs.get("class") or "") for attrs in tables)
    assert {attrs.get("data-filter") for attrs in page.tags("select")} == {"family", "target", "engine"}
    sections = [attrs.get("id") for attrs in page.tags("section")]
    assert sections[0] == "findings" and "how-measured" in sections


def test_text_from_records_is_escaped(files: ReportFiles) -> None:
    assert files.html is not None
    text = files.html.read_text()
    assert "<no kernel>" not in text and "&lt;no kernel&gt; &amp; more" in text
