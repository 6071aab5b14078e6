"""The early-exit figure: top-1 against speedup per threshold, measured over the stream and promised by MACs."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from bench.figures.save import save_figure
from bench.records import ModelRecord

__all__ = ["plot_exit_tradeoff"]


def _threshold(record: ModelRecord) -> float:
    return float(record.params["threshold"])


def plot_exit_tradeoff(records: list[ModelRecord], reference_top1: float | None, title: str, path: Path) -> Path:
    """Top-1 against the measured speedup of the mean latency (95% interval as whiskers), one line per rule,
    each threshold labelled; hollow markers at the same top-1 show the speedup the expected MACs promise, and
    a star marks the uncompressed reference (1.0x)."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    rules = sorted({str(r.params["rule"]) for r in records})
    for index, rule in enumerate(rules):
        color = f"C{index}"
        group = sorted((r for r in records if r.params["rule"] == rule), key=_threshold)
        measured = [r for r in group if r.latency is not None and r.accuracy is not None and r.accuracy.top1]
        xs = [r.latency.speedup_mean for r in measured if r.latency is not None]
        ys = [100 * r.accuracy.top1 for r in measured if r.accuracy is not None and r.accuracy.top1 is not None]
        lows = [r.latency.speedup_mean - r.latency.speedup_mean_ci_low for r in measured if r.latency is not None]
        highs = [r.latency.speedup_mean_ci_high - r.latency.speedup_mean for r in measured if r.latency is not None]
        ax.errorbar(xs, ys, xerr=[lows, highs], marker="o", color=color, capsize=3, label=f"{rule}: measured (mean)")
        theory = [r.macs.theoretical_speedup for r in measured if r.macs is not None]
        ax.scatter(theory, ys, facecolors="none", edgecolors=color, label=f"{rule}: expected MACs", zorder=3)
        for record, x, y in zip(measured, xs, ys, strict=True):
            ax.annotate(f"{_threshold(record):g}", (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    if reference_top1 is not None:
        ax.scatter([1.0], [100 * reference_top1], marker="*", s=90, color="black", label="reference", zorder=4)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ticks = FuncFormatter(lambda value, _position: f"{value:g}x")
    ax.xaxis.set_major_formatter(ticks)
    ax.xaxis.set_minor_formatter(ticks)
    ax.tick_params(axis="x", which="minor", labelsize=6)
    ax.set_xlabel("speedup vs the reference on the same inputs (log)")
    ax.set_ylabel("top-1 (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)
