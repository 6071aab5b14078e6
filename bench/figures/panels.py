"""Figures with one panel per place (target, engine, threads, batch) on shared axes, so places compare at a glance.

Each figure has a `draw_*` function that returns the `Figure` (what tests inspect) and a `plot_*` one that writes
it. Panels sit side by side, or wrap into a grid when there are more than three, and share their axes: the same
height on two panels is the same number. Colours and markers are the families' (`bench.figures.palette`), labels the
short ones (`bench.labels`), and legends sit outside the panels, where they hide no data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from bench.analysis.series import AccuracyPoint, Point, pareto_front
from bench.figures.palette import family_legend, style
from bench.figures.plots import draw_pareto, draw_speedup, label_points, log_axis
from bench.figures.save import save_figure
from bench.labels import family, family_rank, short_label
from bench.records import ModelRecord
from targets.worker import median_ci

__all__ = [
    "draw_speedup_panels", "plot_speedup_panels", "draw_latency_panels", "plot_latency_panels",
    "draw_pareto_panels", "plot_pareto_panels", "latency_interval",
]  # fmt: skip

_LOG_SPAN = 20
"""A cost axis turns logarithmic when its largest value is more than this many times its smallest."""


def _grid(
    count: int, panel: tuple[float, float], extra: tuple[float, float], *, wrap: bool = True
) -> tuple[Figure, list[Axes]]:
    """A figure of `count` panels sharing both axes: side by side up to three, else in rows of at most three
    (one row always when not `wrap`). `panel` is one panel's size in inches, `extra` room for labels and legend."""
    columns = count if count <= 3 or not wrap else min(3, math.ceil(count / 2))
    rows = math.ceil(count / columns)
    size = (extra[0] + panel[0] * columns, extra[1] + panel[1] * rows)
    fig = Figure(figsize=size, layout="constrained")
    axes = list(fig.subplots(rows, columns, sharex=True, sharey=True, squeeze=False).flat)
    for spare in axes[count:]:
        spare.set_visible(False)
    for ax in axes[:count]:  # a wrapped grid's last row may be short: show x labels on every panel's bottom
        ax.xaxis.set_tick_params(labelbottom=True)
    return fig, axes[:count]


def _title(fig: Figure, axes: Sequence[Axes], titles: Sequence[str], title: str, xlabel: str) -> None:
    """Each panel's title (its place) and x label (a figure-wide one would collide with the legend below)."""
    for ax, text in zip(axes, titles, strict=True):
        ax.set_title(text, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=9)
    fig.suptitle(title, fontsize=11)


def draw_speedup_panels(panels: Sequence[tuple[str, dict[str, list[Point]]]], title: str) -> Figure:
    """The headline figure: measured speedup (median, 95% CI) against the fraction of MACs removed for the three
    `analysis.SERIES`, one panel per place titled by it, on shared log axes, with the 1.0 line and the MACs'
    promise in every panel and one legend below them all."""
    fig, axes = _grid(len(panels), (4.2, 3.4), (0.6, 1.3))
    top = max([p.x for _, series in panels for points in series.values() for p in points] + [0.5])
    for ax, (_, series) in zip(axes, panels, strict=True):
        draw_speedup(ax, series, top)
    _title(fig, axes, [name for name, _ in panels], title, "fraction of MACs removed (theoretical)")
    fig.supylabel("measured speedup vs dense baseline (log)", fontsize=9)
    handles: dict[str, Artist] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=min(5, len(handles)),
               fontsize=8, frameon=False)  # fmt: skip
    return fig


def plot_speedup_panels(panels: Sequence[tuple[str, dict[str, list[Point]]]], title: str, path: Path) -> Path:
    """`draw_speedup_panels`, written to `path`."""
    return save_figure(draw_speedup_panels(panels, title), path)


def latency_interval(record: ModelRecord) -> tuple[float, float, float] | None:
    """(median, low, high) latency in seconds: the record's median and a distribution-free 95% CI of it from the
    candidate's raw samples (`targets.worker.median_ci`, order statistics with exact binomial coverage, the one
    the worker uses); (median, median, median) when the record kept no samples, None when it was not timed."""
    if record.timing is None:
        return None
    median = record.timing.median_s
    if not record.timing.samples_s:
        return median, median, median
    low, high = median_ci(record.timing.samples_s)
    return median, min(low, median), max(high, median)


def _rows(panels: Sequence[tuple[str, Sequence[ModelRecord]]]) -> list[str]:
    """Every variant of any panel once, by its short label: families in legend order (`labels.family_rank`, the
    baseline first), variants in the order the records came."""
    first: dict[str, tuple[int, int]] = {}
    for _, records in panels:
        for record in records:
            first.setdefault(short_label(record), (family_rank(family(record)), len(first)))
    return sorted(first, key=first.__getitem__)


def draw_latency_panels(panels: Sequence[tuple[str, Sequence[ModelRecord]]], title: str) -> Figure:
    """Median latency (ms) of every variant as horizontal bars in its family's colour, with the 95% CI of the
    median (`latency_interval`) as whiskers; one panel per place, side by side on a shared x axis and the same
    rows, so a variant reads across places along its row. The baseline's median is a dashed line over its CI band;
    a cell that did not run shows its status where its bar would be."""
    rows = _rows(panels)
    fig, axes = _grid(len(panels), (3.3, 0.25 * len(rows) + 0.4), (2.3, 1.4), wrap=False)
    intervals = {id(r): latency_interval(r) for _, records in panels for r in records if r.ok}
    values = [1e3 * v for i in intervals.values() if i is not None for v in i]
    for ax, (_, records) in zip(axes, panels, strict=True):
        cells = {short_label(r): r for r in records}
        for row, name in enumerate(rows):
            record = cells.get(name)
            interval = intervals.get(id(record)) if record is not None else None
            if record is None or interval is None:
                status = "not run" if record is None else record.status
                ax.annotate(status, (0.02, row), xycoords=ax.get_yaxis_transform(), va="center", fontsize=7,
                            color="#666666", style="italic")  # fmt: skip
                continue
            median, low, high = (1e3 * v for v in interval)
            ax.barh(row, median, height=0.7, color=style(family(record)).color,
                    xerr=[[median - low], [high - median]], error_kw={"capsize": 2, "elinewidth": 0.8},
                    ecolor="#333333")  # fmt: skip
            if record.compressor == "none":
                ax.axvspan(low, high, color="#bbbbbb", alpha=0.5, zorder=0)
                ax.axvline(median, color="black", linestyle="--", linewidth=1, zorder=1)
        ax.grid(True, axis="x", which="both", alpha=0.3)
        ax.set_axisbelow(True)
    ax = axes[0]
    ax.set_yticks(np.arange(len(rows)), rows, fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.6)
    if values and max(values) > _LOG_SPAN * min(values):
        ax.set_xscale("log")
        log_axis(ax.xaxis)
    _title(fig, axes, [name for name, _ in panels], title, "median latency (ms), 95% CI")
    baseline = [Line2D([], [], color="black", linestyle="--", label="baseline median"),
                Patch(color="#bbbbbb", alpha=0.5, label="baseline 95% CI")]  # fmt: skip
    families = [family(r) for _, records in panels for r in records]
    family_legend(fig, families, baseline, loc="outside lower center", ncol=min(6, len(set(families)) + 2))
    return fig


def plot_latency_panels(panels: Sequence[tuple[str, Sequence[ModelRecord]]], title: str, path: Path) -> Path:
    """`draw_latency_panels`, written to `path`."""
    return save_figure(draw_latency_panels(panels, title), path)


def draw_pareto_panels(panels: Sequence[tuple[str, Sequence[AccuracyPoint]]], xlabel: str, title: str) -> Figure:
    """Top-1 against a cost (log x) for every variant in its family's style, the Pareto front as a staircase
    with its points labelled by their short labels; one panel per place on shared axes (top-1 reads across)."""
    fig, axes = _grid(len(panels), (4.6, 3.8), (0.6, 1.3))
    for ax, (_, points) in zip(axes, panels, strict=True):
        draw_pareto(ax, points, pareto_front(points))
    _title(fig, axes, [name for name, _ in panels], title, xlabel)
    fig.supylabel("top-1 on the held-out set (%)", fontsize=9)
    front = [Line2D([], [], color="#444444", linewidth=1, label="Pareto front (labelled)")]
    families = [p.family for _, points in panels for p in points]
    family_legend(fig, families, front, loc="outside lower center", ncol=min(6, len(set(families)) + 1))
    for ax, (_, points) in zip(axes, panels, strict=True):
        label_points(ax, [(p.cost, 100 * p.top1, p.label) for p in pareto_front(points)],
                     [(p.cost, 100 * p.top1) for p in points])  # fmt: skip
    return fig


def plot_pareto_panels(
    panels: Sequence[tuple[str, Sequence[AccuracyPoint]]], xlabel: str, title: str, path: Path
) -> Path:
    """`draw_pareto_panels`, written to `path`."""
    return save_figure(draw_pareto_panels(panels, xlabel, title), path)
