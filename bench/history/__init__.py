"""`python -m bench history`: each stored cell's metric across runs and commits, with its change points."""

from bench.history.plot import MAX_CELLS, plot_history
from bench.history.series import METRICS, Filters, History, Metric, build_history, median_interval
from bench.history.table import render_table

__all__ = [
    "MAX_CELLS", "METRICS", "Filters", "History", "Metric", "build_history", "median_interval", "plot_history",
    "render_table",
]  # fmt: skip
