"""The report's cross-engine part: per model and place, a table of every variant's latency on every engine against
the fastest fp32 baseline there, and a figure of the same numbers."""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench.analysis.engines import EngineComparison, engine_comparisons
from bench.figures.plots import plot_engine_latency
from bench.records import ModelRecord, Record
from bench.report.captions import measured_how
from bench.report.markdown import figure_markdown, slug
from bench.report.sections.base import SectionText

__all__ = ["ENGINES", "EngineSection", "engine_table"]

BASELINE_ROW = "fp32 baseline"


def _cell(comparison: EngineComparison, seconds: float, flags: tuple[str, ...] = ()) -> str:
    """ "0.300 (3.33x)": a latency in ms and the fastest fp32 baseline's latency over it."""
    shown = ", ".join((f"{comparison.speedup(seconds):.2f}x", *flags))
    return f"{1e3 * seconds:.3f} ({shown})"


def engine_table(comparison: EngineComparison) -> tuple[list[str], list[list[Any]], list[str]]:
    """Rows: each engine's fp32 baseline, then every variant; one column per engine.

    A cell is "latency ms (speedup vs the fastest fp32 baseline)", the fastest cell marked "(fastest)"; a cell
    that did not run says its status and the number of the footnote with its reason, never a number.

    Returns:
        Headers, rows, and the footnotes ("[1] skipped: why") the rows refer to.
    """
    fastest = comparison.fastest
    reasons: dict[tuple[str, str], int] = {}

    def text(record: ModelRecord | None) -> str:
        if record is None:
            return "-"
        if record.timing is None:
            number = reasons.setdefault((record.status, record.error or "no reason stored"), len(reasons) + 1)
            return f"{record.status} [{number}]"
        shown = _cell(comparison, record.timing.median_s, record.flags)
        return shown + " (fastest)" if record is fastest else shown

    baselines = comparison.baselines
    rows: list[list[Any]] = [
        [BASELINE_ROW] + [_cell(comparison, baselines[e]) if e in baselines else "-" for e in comparison.engines]
    ]
    for name, cells in comparison.cells.items():
        rows.append([comparison.label(name)] + [text(cells.get(engine)) for engine in comparison.engines])
    footnotes = [f"[{number}] {status}: {reason}" for (status, reason), number in reasons.items()]
    return ["compressor", *comparison.engines], rows, footnotes


def _legend(comparison: EngineComparison) -> str:
    fastest = comparison.fastest_baseline
    against = f"{fastest[0]}, {1e3 * fastest[1]:.3f} ms" if fastest else "none measured"
    return (
        "Each cell: median latency in ms (speedup vs the fastest fp32 baseline here, "
        f"{against}); the fp32 baseline row is the median of each engine's interleaved baselines. Engines ran in"
        " different cells, not interleaved, so drift between cells enters the ratios across engines."
    )


class EngineSection:
    """The engine comparison of one model: a model-level section (its records are one model's), one table per
    place where the model ran on two or more engines, and one figure of them all.

    The summary already puts the engines of a place side by side as columns of the model's table, so only the
    wide text prints these tables.
    """

    name = "engines"

    def render(self, records: Sequence[Record], directory: Path | None) -> SectionText:
        """See `Section.render`."""
        comparisons = list(engine_comparisons(records).values())
        md: list[str] = []
        wide = io.StringIO()
        for comparison in comparisons:
            headers, rows, footnotes = engine_table(comparison)
            title = f"fastest way to run {comparison.model} on {comparison.where}"
            table = tabulate(rows, headers, tablefmt="simple", disable_numparse=True)
            wide.write(f"\n{title}\n{table}\n" + "".join(f"{line}\n" for line in footnotes))
            md += [f"### {title}", "", _legend(comparison), ""]
            md += [tabulate(rows, headers, tablefmt="github", disable_numparse=True), ""]
            md += [line for note in footnotes for line in (note, "")]
        if directory is not None and comparisons:
            md += _figure(comparisons, directory)
        return SectionText(md, "", wide.getvalue())


def _figure(comparisons: Sequence[EngineComparison], directory: Path) -> list[str]:
    model = comparisons[0].model
    places = "; ".join(f"{c.where}: {', '.join(c.engines)}" for c in comparisons)
    alt = f"{model} median latency by compressor and engine ({places})"
    records = [r for c in comparisons for cells in c.cells.values() for r in cells.values()]
    caption = (
        f"{model}: median latency of every variant on every engine, one panel per target (t threads, b batch):"
        f" {places}. Whiskers span the candidate's interquartile range (median +- IQR/2); the black line is the"
        f" fastest fp32 baseline of the panel, the dashed ones each engine's own fp32 baseline. {measured_how(records)}"
    )
    draw = partial(plot_engine_latency, comparisons, f"{model}: latency by compressor and engine")
    return figure_markdown(directory, f"engines-{slug(model)}.png", alt, caption, draw)


ENGINES = EngineSection()
"""The engine comparison's entry in `bench.report.sections.MODEL_SECTIONS`."""
