"""Figures from records (matplotlib, no display needed): the numbers a person compares."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.text import Annotation
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from matplotlib.transforms import Bbox

from bench.analysis.engines import EngineComparison
from bench.analysis.series import SERIES, AccuracyPoint, Point
from bench.figures.palette import family_legend, series_family, style
from bench.figures.save import DPI, new_figure, save_figure
from bench.labels import family, family_rank, short_label
from bench.records import LayersRecord, ModelRecord

__all__ = [
    "plot_speedup_vs_sparsity", "plot_layers", "plot_pareto", "plot_bits", "plot_theory_vs_measured",
    "plot_engine_latency", "draw_speedup", "draw_pareto", "label_points",
    "log_axis",
]  # fmt: skip


def _reference_lines(ax: Axes, xs: np.ndarray, theory_label: str) -> None:
    ax.axhline(1.0, color="black", linewidth=1, label="no speedup (1.0x)")
    ax.plot(xs, 1 / (1 - xs), color="grey", linestyle="--", label=theory_label)
    ax.set_yscale("log")
    log_axis(ax.yaxis, "x")
    ax.grid(True, which="both", alpha=0.3)


def log_axis(axis: Axis, suffix: str = "") -> None:
    """Label a log axis 1, 2, 5, 10, 20, ... in plain numbers (with `suffix`, "x" for a speedup): ticks a decade
    apart say too little, and matplotlib's minor labels in powers of ten run into each other."""
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}{suffix}"))
    axis.set_minor_formatter(NullFormatter())


def draw_speedup(ax: Axes, series: dict[str, list[Point]], top: float) -> None:
    """One panel of the headline figure: the three series with 95% CIs in their families' styles, the 1.0 line and
    the MACs' promise 1/(1-x) up to `top` (the same for every panel of a figure, so the curves line up)."""
    _reference_lines(ax, np.linspace(0, top, 100), "theoretical (MACs)")
    for name in SERIES:
        points = series.get(name, [])
        if not points:
            continue
        xs = np.array([p.x for p in points])
        ys = np.array([p.speedup for p in points])
        lows = np.array([p.low if p.low is not None else p.speedup for p in points])
        highs = np.array([p.high if p.high is not None else p.speedup for p in points])
        look = style(series_family(name))
        ax.errorbar(xs, ys, yerr=[ys - lows, highs - ys], marker=look.marker, color=look.color, capsize=3, label=name)


def plot_speedup_vs_sparsity(series: dict[str, list[Point]], title: str, path: Path) -> Path:
    """Measured speedup against the fraction of MACs removed, with 95% CIs, the 1.0 line and the theory curve."""
    fig, ax = new_figure((7, 4.5))
    draw_speedup(ax, series, max([p.x for points in series.values() for p in points] + [0.5]))
    ax.set_xlabel("fraction of MACs removed (theoretical)")
    ax.set_ylabel("measured speedup vs dense baseline (log)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_layers(records: list[LayersRecord], break_even: float | None, title: str, path: Path) -> Path:
    """Per-GEMM CSR-vs-dense speedup against sparsity (thin), the count-weighted aggregate (thick), break-even."""
    fig, ax = new_figure((7, 4.5))
    sparsities = np.array([float(r.params["sparsity"]) for r in records])
    _reference_lines(ax, np.linspace(0, sparsities.max(), 100), "theoretical 1/(1-s)")
    shapes = [(layer.m, layer.k, layer.n) for layer in records[0].layers]
    for index, shape in enumerate(shapes):
        speedups = [r.layers[index].speedup_median for r in records]
        ax.plot(sparsities, speedups, linewidth=0.8, alpha=0.6, label=f"{shape[0]}x{shape[1]} @ {shape[1]}x{shape[2]}")
    aggregate = [r.speedup_median or np.nan for r in records]
    ax.plot(sparsities, aggregate, color="black", linewidth=2.5, marker="o", label="all layers (time-weighted)")
    if break_even is not None:
        ax.axvline(break_even, color="red", linestyle=":", label=f"break-even {break_even:.3f}")
    ax.set_xlabel("weight sparsity (per layer)")
    ax.set_ylabel("CSR speedup vs dense GEMM (log)")
    ax.set_title(title)
    ax.legend(fontsize=6, ncol=2)
    return save_figure(fig, path)


def draw_pareto(ax: Axes, points: Sequence[AccuracyPoint], front: Sequence[AccuracyPoint]) -> None:
    """One Pareto panel: every variant in its family's style, the front joined by a line, its points labelled
    (placed later by `label_points`, once the axes' limits are final)."""
    for name in sorted(dict.fromkeys(p.family for p in points), key=lambda name: name == "baseline"):
        mine = [p for p in points if p.family == name]
        look = style(name)
        size = 110 if name == "baseline" else 34  # the baseline, a star, is the point the others are read against
        ax.scatter([p.cost for p in mine], [100 * p.top1 for p in mine], color=look.color, marker=look.marker,
                   s=size, zorder=4 if name == "baseline" else 3, edgecolors="white", linewidths=0.4)  # fmt: skip
    ax.step([p.cost for p in front], [100 * p.top1 for p in front], where="post", color="#444444", linewidth=1,
            zorder=2, label="Pareto front")  # fmt: skip
    ax.set_xscale("log")
    log_axis(ax.xaxis)
    ax.margins(x=0.08, y=0.1)  # room for the labels of the points at the edges
    ax.grid(True, which="both", alpha=0.3)


def plot_pareto(points: list[AccuracyPoint], front: list[AccuracyPoint], xlabel: str, title: str, path: Path) -> Path:
    """Accuracy against a cost (latency or bytes, log x) for every variant, the Pareto front joined and labelled."""
    fig, ax = new_figure((7, 4.5))
    draw_pareto(ax, points, front)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("top-1 (%)")
    ax.set_title(title)
    family_legend(ax, [p.family for p in points], ax.get_legend_handles_labels()[0], loc="lower right")
    fig.tight_layout()
    label_points(ax, [(p.cost, 100 * p.top1, p.label) for p in front], [(p.cost, 100 * p.top1) for p in points])
    return save_figure(fig, path)


def plot_bits(records: list[ModelRecord], title: str, path: Path) -> Path:
    """Bytes and top-1 against bits per weight, one line per quantizer (records with packed sizes)."""
    fig, size_ax = new_figure((7, 4.5))
    accuracy_ax = size_ax.twinx()
    by_compressor: dict[str, list[ModelRecord]] = {}
    for record in records:
        by_compressor.setdefault(record.compressor, []).append(record)
    for compressor, group in sorted(by_compressor.items()):
        group.sort(key=lambda r: int(r.params.get("bits", 1)))
        bits = [int(r.params.get("bits", 1)) for r in group]
        coded = [(r.sizes.huffman_bytes or r.sizes.packed_bytes or np.nan) if r.sizes else np.nan for r in group]
        size_ax.plot(bits, coded, marker="o", label=f"{compressor}: bytes")
        accuracies = [100 * r.accuracy.top1 for r in group if r.accuracy is not None and r.accuracy.top1 is not None]
        if len(accuracies) == len(group):
            accuracy_ax.plot(bits, accuracies, marker="s", linestyle="--", label=f"{compressor}: top-1")
    size_ax.set_yscale("log")
    size_ax.set_xlabel("bits per weight")
    size_ax.set_ylabel("bytes (bit-packed, or Huffman-coded where measured)")
    accuracy_ax.set_ylabel("top-1 (%)")
    size_ax.set_title(title)
    handles = size_ax.get_legend_handles_labels()[0] + accuracy_ax.get_legend_handles_labels()[0]
    size_ax.legend(handles, [str(h.get_label()) for h in handles], fontsize=7)
    size_ax.grid(True, alpha=0.3)
    return save_figure(fig, path)


def plot_theory_vs_measured(records: list[ModelRecord], title: str, path: Path) -> Path:
    """Theoretical (MACs) and measured speedup side by side for every variant (ok records): how much of the
    promise ran. Measured bars take their family's colour, so the figure reads like the others."""
    records = sorted(records, key=lambda r: family_rank(family(r)))  # a family's bars together
    fig, ax = new_figure((max(7, 0.32 * len(records) + 4), 4.8))
    positions = np.arange(len(records))
    theory = [r.macs.theoretical_speedup if r.macs else np.nan for r in records]
    measured = [r.timing.speedup_median if r.timing else np.nan for r in records]
    colors = [style(family(r)).color for r in records]
    ax.bar(positions - 0.2, theory, width=0.4, color="#d9d9d9", edgecolor="#999999", linewidth=0.5)
    ax.bar(positions + 0.2, measured, width=0.4, color=colors)
    ax.axhline(1.0, color="black", linewidth=1)
    ax.set_yscale("log")
    log_axis(ax.yaxis, "x")
    ax.set_xticks(positions, [short_label(r) for r in records], rotation=55, ha="right", fontsize=7)
    ax.set_xlim(-0.6, len(records) - 0.4)
    ax.set_ylabel("speedup vs dense baseline (log)")
    ax.set_title(title)
    theory_handle = Patch(facecolor="#d9d9d9", edgecolor="#999999", label="theoretical (MACs)")
    family_legend(ax, [family(r) for r in records], [theory_handle], loc="upper left", bbox_to_anchor=(1.01, 1),
                  title="measured (median)", title_fontsize=8)  # fmt: skip  # beside the axes: it hides no bar
    ax.grid(True, axis="y", which="both", alpha=0.3)
    return save_figure(fig, path)


def plot_engine_latency(comparisons: Sequence[EngineComparison], title: str, path: Path) -> Path:
    """Median latency of every variant on every engine, grouped horizontal bars with the candidate's IQR as
    whiskers (median +- IQR/2); one panel per place on a shared x axis, with the fastest fp32 baseline as a solid
    line and each engine's own as a dashed one. A cell that did not run gets its status where its bar would be."""
    engines = list(dict.fromkeys(engine for c in comparisons for engine in c.engines))
    colors = {engine: f"C{index}" for index, engine in enumerate(engines)}
    heights = [len(c.cells) * len(c.engines) for c in comparisons]
    fig = Figure(figsize=(8, 1.0 + sum(0.8 + 0.22 * h for h in heights)))
    axes = fig.subplots(len(comparisons), 1, sharex=True, squeeze=False, height_ratios=heights)[:, 0]
    latencies = [r.timing.median_s for c in comparisons for v in c.cells.values() for r in v.values() if r.timing]
    for ax, comparison in zip(axes, comparisons, strict=True):
        names = list(comparison.cells)
        width = 0.8 / len(comparison.engines)
        for index, engine in enumerate(comparison.engines):
            ys, medians, errors = [], [], []
            for row, name in enumerate(names):
                record = comparison.cells[name].get(engine)
                y = row - 0.4 + width * (index + 0.5)
                if record is not None and record.timing is not None:
                    ys.append(y)
                    medians.append(1e3 * record.timing.median_s)
                    errors.append(1e3 * record.timing.iqr_s / 2)
                elif record is not None:
                    where = ax.get_yaxis_transform()  # x in axes fractions: a log axis has no 0
                    ax.annotate(f"{engine}: {record.status}", (0.01, y), xycoords=where, va="center", fontsize=6)
            ax.barh(ys, medians, height=width, xerr=errors, capsize=2, color=colors[engine], label=engine)
            if engine in comparison.baselines:
                ax.axvline(1e3 * comparison.baselines[engine], color=colors[engine], linestyle="--", linewidth=1)
        fastest = comparison.fastest_baseline
        if fastest is not None:
            label = f"fastest fp32 baseline ({fastest[0]}, {1e3 * fastest[1]:.3f} ms)"
            ax.axvline(1e3 * fastest[1], color="black", linewidth=1.5, label=label)
        ax.set_yticks(np.arange(len(names)), [comparison.label(name) for name in names], fontsize=7)
        ax.set_ylim(len(names) - 0.5, -0.5)
        if latencies and max(latencies) > 20 * min(latencies):
            ax.set_xscale("log")
        ax.set_title(f"{comparison.model}, {comparison.where}", fontsize=9)
        ax.grid(True, axis="x", which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[-1].set_xlabel("median latency (ms); whiskers: candidate's IQR (median +- IQR/2)")
    fig.suptitle(title)
    return save_figure(fig, path)


_DIRECTIONS = ((1, 0.6), (1, -0.9), (-1, 0.6), (-1, -0.9), (0, 1), (0, -1.4), (1, 0), (-1, 0))
_OFFSETS = tuple((round(r * dx), round(r * dy)) for r in (9, 18, 30, 44) for dx, dy in _DIRECTIONS)
"""Where a label may sit relative to its point, in points, nearest first: above right, below right, above left, ..."""
_LEADER = 12
"""A label farther than this (points) from its point gets a thin line to it, so it is never read as another's."""


def _anchor(note: Annotation, offset: tuple[int, int]) -> None:
    note.xyann = offset
    note.set_horizontalalignment("left" if offset[0] > 0 else "right" if offset[0] < 0 else "center")
    note.set_verticalalignment("bottom" if offset[1] > 0 else "top" if offset[1] < 0 else "center")


def label_points(
    ax: Axes, points: Sequence[tuple[float, float, str]], avoid: Sequence[tuple[float, float]] = (), fontsize: float = 7
) -> list[Annotation]:
    """Label each (x, y, text) point at the nearest spot that overlaps no other label, no point (of `points` and
    the unlabelled `avoid`) and stays inside the axes (the least crowded one when none is free), with a leader
    line when it had to move away: a front's labels stay readable where points cluster.

    Call it once the axes' limits and the figure's layout are final: it measures the labels as they will be drawn.
    """
    fig = ax.get_figure(root=True)
    assert isinstance(fig, Figure)
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    fig.draw_without_rendering()
    frame = ax.get_window_extent(renderer)
    radius = 3.5 * DPI / 72  # a marker's half-width, in pixels
    centres = ax.transData.transform([(p[0], p[1]) for p in points] + list(avoid)) if points else np.empty((0, 2))
    markers = [Bbox.from_bounds(x - radius, y - radius, 2 * radius, 2 * radius) for x, y in centres]
    labels: list[Bbox] = []
    placed: list[Annotation] = []
    for x, y, text in points:
        note = ax.annotate(text, (x, y), xytext=_OFFSETS[0], textcoords="offset points", fontsize=fontsize, zorder=5,
                           bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
                           arrowprops={"arrowstyle": "-", "color": "#777777", "linewidth": 0.5, "shrinkA": 0,
                                       "shrinkB": 3})  # fmt: skip
        note.set_in_layout(False)  # placed inside the frame: the layout need not make room for it
        best: tuple[float, tuple[int, int]] = (math.inf, _OFFSETS[0])
        for offset in _OFFSETS:
            _anchor(note, offset)
            box = note.get_window_extent(renderer)
            area = box.width * box.height
            on_labels = sum(_overlap(box, other) for other in labels)
            on_markers = sum(_overlap(box, other) for other in markers)
            cost = 3 * (area - _overlap(box, frame)) + 2 * on_labels + on_markers  # a cut or hidden label is worst
            if cost < best[0]:
                best = (cost, offset)
            if on_labels == 0 and cost <= 0.05 * area:  # a corner touching a marker still reads
                break
        _anchor(note, best[1])
        if note.arrow_patch is not None and math.hypot(*best[1]) <= _LEADER:
            note.arrow_patch.set_visible(False)
        labels.append(note.get_window_extent(renderer))
        placed.append(note)
    return placed


def _overlap(a: Bbox, b: Bbox) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0.0) * max(height, 0.0)
