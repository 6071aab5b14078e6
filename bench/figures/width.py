"""The width study's figure: top-1 and measured speedup against MACs, for one switching model and for one pruned
model per budget."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from bench.figures.palette import style
from bench.figures.save import save_figure

__all__ = ["WidthPoint", "plot_width_against_pruning"]


@dataclass(frozen=True)
class WidthPoint:
    """One cell as the figure draws it: its MAC budget (fraction of the dense MACs), top-1 and speedup with CI.

    `sliced_top1` is the top-1 of the untrained reference sliced to that width (slimmable widths only), which shows
    what training the widths together bought.
    """

    budget: float
    top1: float | None
    sliced_top1: float | None
    speedup: float
    low: float | None
    high: float | None


def plot_width_against_pruning(widths: list[WidthPoint], pruned: list[WidthPoint], title: str, path: Path) -> Path:
    """Two panels over the MAC budget (log): top-1, and measured speedup with its 95% CI and the 1/budget theory."""
    fig = Figure(figsize=(10, 4.2))
    accuracy_ax, speed_ax = fig.subplots(1, 2)
    # In the families' fixed colours and markers, as every other figure of the report draws them.
    dynamic, channel = style("dynamic"), style("channel")
    series = (("dynamic.width (one model, switched)", widths, dynamic.marker, dynamic.color),
              ("prune.channel (one model per budget)", pruned, channel.marker, channel.color))  # fmt: skip
    for label, points, marker, color in series:
        if not points:
            continue
        xs = np.array([p.budget for p in points])
        accuracy_ax.plot(xs, [100 * p.top1 if p.top1 is not None else np.nan for p in points], marker=marker,
                         color=color, label=label)  # fmt: skip
        ys = np.array([p.speedup for p in points])
        lows = np.array([p.low if p.low is not None else p.speedup for p in points])
        highs = np.array([p.high if p.high is not None else p.speedup for p in points])
        speed_ax.errorbar(xs, ys, yerr=[ys - lows, highs - ys], marker=marker, capsize=3, color=color, label=label)
    sliced = [p for p in widths if p.sliced_top1 is not None]
    if sliced:
        accuracy_ax.plot([p.budget for p in sliced], [100 * p.sliced_top1 for p in sliced if p.sliced_top1 is not None],
                         linestyle=":", marker=".", color="grey", label="reference sliced, untrained")  # fmt: skip
    budgets = [p.budget for p in [*widths, *pruned]]
    xs = np.geomspace(min(budgets), 1.0, 50)
    speed_ax.plot(xs, 1 / xs, color="grey", linestyle="--", label="theoretical (1 / MAC budget)")
    speed_ax.axhline(1.0, color="black", linewidth=1)
    speed_ax.set_yscale("log")
    for ax, ylabel in ((accuracy_ax, "top-1 (%)"), (speed_ax, "measured speedup vs dense baseline (log)")):
        ax.set_xscale("log")
        ax.set_xlabel("MAC budget (fraction of the dense model's MACs, log)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)
