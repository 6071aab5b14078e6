"""The HTML report: one self-contained file per run (figures embedded, its script and style inline, nothing
fetched), rendered with Jinja2 from the same parts as the Markdown report.

The page puts the finding first; per model, the headline figure, a summary table that sorts by any column and
filters by compressor family, target and engine, the full table behind a fold, the other figures and the model's
sections; then the run's sections, one part of the page per group of `sections.RUN_SECTIONS`, the notes, and how
the numbers were measured.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path
from typing import Any

import markdown
from jinja2 import Environment, PackageLoader, select_autoescape
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor
from markupsafe import Markup

from bench.analysis.series import variant
from bench.labels import family, short_executed, short_label, short_place
from bench.records import ModelRecord
from bench.report.markdown import slug
from bench.report.method import method_facts
from bench.report.parts import ModelPart, ReportParts
from bench.report.summary import human_bytes, speedup_cell, top1_text
from bench.report.tables import machine_table, model_table

__all__ = ["render_html", "summary_rows", "markdown_html"]

_ENVIRONMENT = Environment(
    loader=PackageLoader("bench.report", "templates"), autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
    lstrip_blocks=True,
)  # fmt: skip


def _asset(name: str) -> Markup:
    """A file of `bench/report/templates` inlined as is (the page's style and script: a report opens offline)."""
    return Markup(resources.files("bench.report").joinpath("templates", name).read_text())


class _Figures(Treeprocessor):
    """Embeds every image as a data URI and makes an image followed by its italic caption paragraph (as
    `figure_markdown` writes them) one `<figure>` with a `<figcaption>`; tables become sortable and scroll
    inside a wrapper on a narrow screen."""

    def __init__(self, md: markdown.Markdown, directory: Path) -> None:
        super().__init__(md)
        self.directory = directory

    def run(self, root: ET.Element) -> None:
        children = list(root)
        for index, element in enumerate(children):
            image = element.find("img") if element.tag == "p" and len(element) == 1 else None
            if image is not None and not (element.text or "").strip():
                self._figure(root, element, image, children[index + 1] if index + 1 < len(children) else None)
            elif element.tag == "table":
                position = list(root).index(element)
                wrapper = ET.Element("div", {"class": "table-wrap"})
                root.remove(element)
                element.set("class", "sortable")
                wrapper.append(element)
                root.insert(position, wrapper)

    def _figure(self, root: ET.Element, paragraph: ET.Element, image: ET.Element, after: ET.Element | None) -> None:
        source = self.directory / image.get("src", "")
        if source.is_file():
            image.set("src", "data:image/png;base64," + base64.b64encode(source.read_bytes()).decode())
        paragraph.tag = "figure"
        caption = after.find("em") if after is not None and after.tag == "p" and len(after) == 1 else None
        if after is not None and caption is not None and not (after.text or "").strip():
            figcaption = ET.SubElement(paragraph, "figcaption")
            figcaption.text = caption.text
            for child in caption:
                figcaption.append(child)
            root.remove(after)


class _FiguresExtension(Extension):
    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory

    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802 - Python-Markdown's name
        # Text from records (an error message with `<...>` in it) is text, never markup: raw HTML is not passed on.
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        md.treeprocessors.register(_Figures(md, self.directory), "bench_figures", 5)


def markdown_html(lines: list[str], directory: Path) -> Markup:
    """Markdown lines of the report as HTML, its figures embedded from `directory`."""
    text = "\n".join(lines)
    if not text.strip():
        return Markup("")
    html = markdown.markdown(text, extensions=["tables", _FiguresExtension(directory)], output_format="html")
    # Safe as it is: the report's own Markdown, rendered with raw HTML turned off, so every text is escaped.
    return Markup(html)


def _sort_number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def summary_rows(records: list[ModelRecord]) -> list[dict[str, Any]]:
    """One row per cell (variant x place), with the data attributes the page's filters read and a sort key per
    numeric cell."""
    rows = []
    for record in records:
        timing, sizes, macs = record.timing, record.sizes, record.macs
        encoding = sizes.smallest() if sizes is not None else None
        top1 = record.accuracy.top1 if record.accuracy is not None else None
        rows.append({
            "family": family(record), "target": record.target, "engine": record.engine,
            "cells": [
                {"text": short_label(record), "title": f"{variant(record)} ({family(record)})"},
                {"text": short_place(record), "title": record.place},
                {"text": short_executed(record), "title": record.executed_as or ""},
                {"text": " ".join([*human_bytes(encoding[1]), encoding[0]]) if encoding else "-",
                 "sort": _sort_number(encoding[1] if encoding else None), "num": True},
                {"text": top1_text(record), "sort": _sort_number(top1), "num": True},
                {"text": f"{macs.theoretical_speedup:.2f}x" if macs else "-",
                 "sort": _sort_number(macs.theoretical_speedup if macs else None), "num": True},
                {"text": speedup_cell(record), "sort": _sort_number(timing.speedup_median if timing else None),
                 "num": True, "title": record.error or ""},
                {"text": f"{1e3 * timing.median_s:.3f}" if timing else "-",
                 "sort": _sort_number(1e3 * timing.median_s if timing else None), "num": True},
                {"text": ", ".join(record.flags) or ("" if record.ok else record.status)},
            ],
        })  # fmt: skip
    return rows


SUMMARY_HEADERS = (
    "compressor", "where", "executed as", "smallest encoding", "top-1 %", "theor. speedup",
    "speedup [95% CI]", "latency ms", "flags",
)  # fmt: skip


def _model_context(part: ModelPart, directory: Path) -> dict[str, Any]:
    headers, rows = model_table(part.records, full=True)
    return {
        "name": part.model, "slug": slug(part.model), "headline": markdown_html(part.headline, directory),
        "summary_headers": SUMMARY_HEADERS, "summary_rows": summary_rows(part.records),
        "full_headers": headers, "full_rows": rows, "figures": markdown_html(part.figures, directory),
        "sections": markdown_html(part.sections.markdown, directory),
        "places": sorted({short_place(r) for r in part.records}),
    }  # fmt: skip


def render_html(parts: ReportParts, directory: Path) -> str:
    """The report page of `parts`, figures read from `directory` (where `report_parts` drew them)."""
    headers, rows = machine_table(parts.records)
    context = {
        "run": parts.run, "findings": parts.findings,
        "models": [_model_context(part, directory) for part in parts.models],
        "sections": {group: markdown_html(text.markdown, directory) for group, text in parts.sections.items()},
        "notes": markdown_html(parts.notes, directory), "machine_headers": headers, "machine_rows": rows,
        "method": method_facts(parts.run, parts.records), "style": _asset("report.css"),
        "script": _asset("report.js"),
    }  # fmt: skip
    return _ENVIRONMENT.get_template("report.html.j2").render(context)
