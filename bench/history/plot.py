"""The figure of a history: one line per cell over the runs, intervals as error bars, change points marked.

Readability with many cells: at most `MAX_CELLS` lines are drawn (cells with a change point first), with a note
of how many were left out; the legend sits outside the axes; latency and bytes are drawn relative to each
series' first point, so cells of very different sizes share one axis (speedup and top-1 already do).
"""

from __future__ import annotations

from pathlib import Path

from bench.figures.save import new_figure, save_figure
from bench.history.series import History, Series
from bench.labels import cut_label

__all__ = ["MAX_CELLS", "plot_history"]

MAX_CELLS = 10
_NORMALISED = ("latency", "bytes")
_MAX_TICKS = 40


def _drawn(history: History) -> list[tuple[int, Series]]:
    """The numbered series to draw: those with change points first, then in table order, at most MAX_CELLS."""
    numbered = list(enumerate(history.series, 1))
    numbered.sort(key=lambda item: not item[1].steps)
    return sorted(numbered[:MAX_CELLS], key=lambda item: item[0])


def plot_history(history: History, path: Path) -> Path:
    """Write the figure of `history` to `path` (PNG) and return it."""
    metric = history.metric
    columns = history.columns
    x_of = {run: x for x, run in enumerate(columns)}
    normalised = metric.name in _NORMALISED
    fig, ax = new_figure((11, 5.5))
    labels_at: dict[int, int] = {}  # changes already annotated at a run: the next one goes beside them
    for number, series in _drawn(history):
        scale = series.points[0].value if normalised else 1.0
        xs = [x_of[p.run] for p in series.points]
        ys = [p.value / scale for p in series.points]
        below = [(p.value - p.low) / scale if p.low is not None else 0.0 for p in series.points]
        above = [(p.high - p.value) / scale if p.high is not None else 0.0 for p in series.points]
        line = ax.errorbar(
            xs, ys, yerr=[below, above], marker="o", markersize=4, capsize=3, linewidth=1.2,
            label=f"{number}. {cut_label(series.label, 60)}",
        )  # fmt: skip
        color = line.lines[0].get_color()
        flagged = [(x, y) for x, y, p in zip(xs, ys, series.points, strict=True) if p.flags]
        if flagged:
            ax.scatter([x for x, _ in flagged], [y for _, y in flagged], marker="x", s=60, color=color, zorder=4)
        for step in series.steps:
            x = x_of[series.points[step.index].run]
            ax.axvline(x - 0.5, color=color, linestyle=":", linewidth=1)
            beside = labels_at.get(x, 0)
            labels_at[x] = beside + 1
            ax.annotate(
                f"{number}: {history.runs[columns[x]].short} {metric.describe(step)}", xy=(x - 0.5, 1.0),
                xycoords=("data", "axes fraction"), xytext=(2 + 9 * beside, -4), textcoords="offset points",
                rotation=90, fontsize=7, color=color, va="top",
            )  # fmt: skip
    if metric.name == "speedup":
        ax.axhline(1.0, color="black", linewidth=0.8)
    every = max(1, -(-len(columns) // _MAX_TICKS))
    ticks = list(range(0, len(columns), every))
    ax.set_xticks(ticks, [history.runs[columns[x]].short for x in ticks], rotation=90, fontsize=7)
    ax.set_xlim(-0.5, max(len(columns) - 0.5, 0.5))
    ax.set_xlabel("commit of each run, oldest first (a commit run twice appears twice)")
    ax.set_ylabel(f"{metric.name} / first point of each cell" if normalised else metric.title)
    ax.set_title(f"{metric.title} across runs; dotted: a change starts; x: busy, noisy or throttled", fontsize=10)
    ax.grid(True, alpha=0.3)
    left_out = len(history.series) - MAX_CELLS
    note = f"{left_out} more cells not drawn:\nnarrow with --model, --compressor or --target" if left_out > 0 else None
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, borderaxespad=0, title=note, title_fontsize=7)
    return save_figure(fig, path, crop=True)
