"""The lottery study's figure: top-1 against sparsity for each way of spending one training budget."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from bench.analysis.lottery import SeedPoint
from bench.figures.save import save_figure

__all__ = ["plot_lottery"]

# Fixed per method, so every lottery figure reads alike: the ticket warm, its control grey.
_STYLE = {
    "ticket": ("tab:red", "o"),
    "late rewind": ("tab:orange", "D"),
    "fine-tune": ("tab:blue", "s"),
    "reinit": ("tab:grey", "v"),
    "one-shot": ("tab:green", "^"),
}


def _style(method: str) -> tuple[str, str]:
    return next((style for name, style in _STYLE.items() if method.startswith(name)), ("black", "x"))


def plot_lottery(series: Mapping[str, Sequence[SeedPoint]], baseline: float | None, title: str, path: Path) -> Path:
    """Mean top-1 over seeds against sparsity (logit axis: each halving of the survivors one step), the seed
    range as error bars, and the dense reference as a line."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for method, points in series.items():
        color, marker = _style(method)
        xs = np.array([p.sparsity for p in points])
        ys = np.array([100 * p.mean for p in points])
        lows, highs = np.array([100 * p.low for p in points]), np.array([100 * p.high for p in points])
        # Clipped at 0: the mean of equal top-1s can round a hair past them.
        errors = [np.maximum(ys - lows, 0), np.maximum(highs - ys, 0)]
        ax.errorbar(xs, ys, yerr=errors, color=color, marker=marker, capsize=3, label=method)
    if baseline is not None:
        ax.axhline(100 * baseline, color="black", linewidth=1, linestyle="--", label="dense reference")
    ax.set_xscale("logit")
    levels = sorted({round(p.sparsity, 3) for points in series.values() for p in points})
    ax.set_xticks(levels, [f"{level:g}" for level in levels])
    ax.minorticks_off()
    ax.set_xlabel("sparsity of the prunable weights (logit scale)")
    ax.set_ylabel("top-1 (%), mean over seeds; bars: seed range")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
