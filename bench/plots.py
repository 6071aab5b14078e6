"""Figures from records (matplotlib, no display needed): the numbers a person compares."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bench.analysis import SERIES, Point, short_variant
from bench.analysis_engines import EngineComparison
from bench.records import LayersRecord, ModelRecord

__all__ = [
    "plot_speedup_vs_sparsity", "plot_layers", "plot_pareto", "plot_bits", "plot_theory_vs_measured",
    "plot_engine_latency", "figure_markdown", "save_figure", "slug",
]  # fmt: skip

_MARKERS = {SERIES[0]: "o", SERIES[1]: "s", SERIES[2]: "^"}


def figure_markdown(
    directory: Path | None, name: str, alt: str, caption: str, draw: Callable[[Path], Path]
) -> list[str]:
    """Draw one figure into `directory` as `name` and return its Markdown: the image, then its caption in italics
    (what is drawn and how it was measured; the HTML report makes it the figure's caption). Nothing when no report
    is written."""
    if directory is None:
        return []
    return [f"![{alt}]({draw(directory / name).name})", "", f"*{caption}*", ""]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _reference_lines(ax: Axes, xs: np.ndarray, theory_label: str) -> None:
    ax.axhline(1.0, color="black", linewidth=1, label="no speedup (1.0x)")
    ax.plot(xs, 1 / (1 - xs), color="grey", linestyle="--", label=theory_label)
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)


def plot_speedup_vs_sparsity(series: dict[str, list[Point]], title: str, path: Path) -> Path:
    """Measured speedup against the fraction of MACs removed, with 95% CIs, the 1.0 line and the theory curve."""
    fig, ax = _figure((7, 4.5))
    all_x = [p.x for points in series.values() for p in points]
    _reference_lines(ax, np.linspace(0, max(all_x + [0.5]), 100), "theoretical (MACs)")
    for name in SERIES:
        points = series.get(name, [])
        if not points:
            continue
        xs = np.array([p.x for p in points])
        ys = np.array([p.speedup for p in points])
        lows = np.array([p.low if p.low is not None else p.speedup for p in points])
        highs = np.array([p.high if p.high is not None else p.speedup for p in points])
        ax.errorbar(xs, ys, yerr=[ys - lows, highs - ys], marker=_MARKERS[name], capsize=3, label=name)
    ax.set_xlabel("fraction of MACs removed (theoretical)")
    ax.set_ylabel("measured speedup vs dense baseline (log)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_layers(records: list[LayersRecord], break_even: float | None, title: str, path: Path) -> Path:
    """Per-GEMM CSR-vs-dense speedup against sparsity (thin), the count-weighted aggregate (thick), break-even."""
    fig, ax = _figure((7, 4.5))
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


def plot_pareto(
    points: list[tuple[float, float, str]], front: list[tuple[float, float, str]], xlabel: str, title: str, path: Path
) -> Path:
    """Accuracy against a cost (latency or bytes, log x) for every variant, the Pareto front joined."""
    fig, ax = _figure((7, 4.5))
    ax.scatter([p[0] for p in points], [100 * p[1] for p in points], color="tab:blue", s=18, zorder=3)
    ax.plot([p[0] for p in front], [100 * p[1] for p in front], color="tab:red", linewidth=1.5, label="Pareto front")
    for cost, accuracy, label in front:
        ax.annotate(label, (cost, 100 * accuracy), fontsize=6, xytext=(3, -8), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("top-1 (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_bits(records: list[ModelRecord], title: str, path: Path) -> Path:
    """Bytes and top-1 against bits per weight, one line per quantizer (records with packed sizes)."""
    fig, size_ax = _figure((7, 4.5))
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
    promise ran."""
    fig, ax = _figure((max(7, 0.45 * len(records) + 2), 4.8))
    positions = np.arange(len(records))
    theory = [r.macs.theoretical_speedup if r.macs else np.nan for r in records]
    measured = [r.timing.speedup_median if r.timing else np.nan for r in records]
    ax.bar(positions - 0.2, theory, width=0.4, label="theoretical (MACs)", color="lightgrey")
    ax.bar(positions + 0.2, measured, width=0.4, label="measured (median)", color="tab:blue")
    ax.axhline(1.0, color="black", linewidth=1)
    ax.set_yscale("log")
    ax.set_xticks(positions, [short_variant(r) for r in records], rotation=60, ha="right", fontsize=6)
    ax.set_ylabel("speedup vs dense baseline (log)")
    ax.set_title(title)
    ax.legend(fontsize=8)
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


def _figure(size: tuple[float, float]) -> tuple[Figure, Axes]:
    """A figure with one axes, drawn off screen: `Figure` needs neither pyplot's global state nor a display."""
    fig = Figure(figsize=size)
    return fig, fig.subplots()


def save_figure(fig: Figure, path: Path) -> Path:
    """Lay the figure out and write it as a PNG at the report's resolution, making its folder."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
