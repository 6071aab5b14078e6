"""The terminal view of a history: one row per cell, one column per run for the newest runs that fit on a screen
(`labels.SCREEN_WIDTH`), then one line per change point."""

from __future__ import annotations

from tabulate import tabulate

from bench.history.changepoints import MIN_POINTS
from bench.history.series import History, Series, too_short
from bench.labels import SCREEN_WIDTH, cut_label

__all__ = ["render_table"]

_LABEL = 44
"""The most a cell's label takes of a row, so that a few runs always fit beside it."""
_MISSING = "-"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _cells(history: History, series: Series, columns: list[int]) -> list[str]:
    starts = {series.points[step.index].run for step in series.steps}
    by_run = {point.run: point for point in series.points}
    cells = []
    for run in columns:
        point = by_run.get(run)
        if point is None:
            cells.append(_MISSING)
            continue
        marks = ("*" if run in starts else "") + ("!" if point.flags else "")
        cells.append(history.metric.show(point.value) + marks)
    return cells


def _table(history: History, columns: list[int]) -> str:
    headers = ["#", "cell", *(history.runs[run].short for run in columns)]
    rows = [
        [str(number), cut_label(series.label, _LABEL), *_cells(history, series, columns)]
        for number, series in enumerate(history.series, 1)
    ]
    return tabulate(rows, headers, disable_numparse=True)


def _fitting(history: History) -> tuple[str, int]:
    """The table with the most newest runs that fits in SCREEN_WIDTH columns, and how many older runs it leaves out."""
    columns = history.columns
    shown = len(columns)
    while True:
        text = _table(history, columns[len(columns) - shown :])
        if shown <= 1 or max(len(line) for line in text.splitlines()) <= SCREEN_WIDTH:
            return text, len(columns) - shown
        shown -= 1


def _change_lines(history: History) -> list[str]:
    lines = []
    for series in history.series:
        for step in series.steps:
            run = history.runs[series.points[step.index].run]
            head = f"change at {run.short} ({run.run_id}): {history.metric.name} {history.metric.describe(step)} in "
            lines.append(head + cut_label(series.label, SCREEN_WIDTH - len(head)))
    return lines


def render_table(history: History) -> str:
    """The series table, notes on what it leaves out, and the change points, each line at most SCREEN_WIDTH wide."""
    text, older = _fitting(history)
    columns = history.columns
    lines = [f"{history.metric.title}, {_count(len(history.series), 'cell')} over {_count(len(columns), 'run')}", text]
    if older:
        lines.append(f"{_count(older, 'older run')} not shown here (the plot has every run)")
    lines.append(
        f"{_MISSING} not measured by that run (it reused an earlier record, or the cell was not in its matrix)"
    )
    lines.append("* a change starts at this run; ! busy, noisy or throttled (the timing may be off)")
    if len(history.runs) < 2:
        lines.append(f"the store has {len(history.runs)} run: change detection needs more runs")
    elif too_short(history):
        short = _count(too_short(history), "cell")
        lines.append(f"{short} measured fewer than {MIN_POINTS} times: not searched for changes until more runs")
    changes = _change_lines(history)
    lines.extend(changes or ["no change points"])
    return "\n".join(lines) + "\n"
