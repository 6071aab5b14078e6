"""How every figure of the suite is made and written: off screen, at one resolution, as a PNG in its folder."""

from __future__ import annotations

from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["DPI", "new_figure", "save_figure"]

DPI = 110
"""The resolution of every figure: sharp on a laptop screen and small enough to embed in the HTML report."""


def new_figure(size: tuple[float, float]) -> tuple[Figure, Axes]:
    """A figure with one axes, drawn off screen: `Figure` needs neither pyplot's global state nor a display."""
    fig = Figure(figsize=size)
    return fig, fig.subplots()


def save_figure(fig: Figure, path: Path, *, crop: bool = False) -> Path:
    """Lay the figure out (unless it has a layout engine of its own) and write it as a PNG at `DPI`, making its
    folder.

    Args:
        crop: cut the saved image to what is drawn, for a figure whose legend sits outside its axes, which the
            layout would otherwise squeeze the axes for.
    """
    if fig.get_layout_engine() is None and not crop:
        fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight" if crop else None)
    return path
