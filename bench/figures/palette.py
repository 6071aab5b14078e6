"""One colour and one marker per compressor family, the same in every figure of every report.

A reader learns once that channel pruning is the blue triangle and then reads every figure by it; colours
picked per figure (matplotlib's cycle) would give the same family a different colour in the next figure. The
colours are the Okabe-Ito palette, safe for the common colour-vision deficiencies, with a few darker ones for the
families beyond its seven; the markers tell the families apart where the colours do not (greyscale print). A family
that a new compressor declares takes the next style of a second fixed list (Paul Tol's muted palette, none of it
used above) by its place among the new families, so it too has one colour in every figure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D

from bench.labels import FAMILIES, presentation
from bench.labels import families as legend_order
from compressors import registry

__all__ = ["Style", "style", "series_family", "family_handles", "family_legend"]


@dataclass(frozen=True)
class Style:
    """How a family is drawn: a matplotlib colour (hex) and marker."""

    color: str
    marker: str


_STYLES = {
    "baseline": Style("#000000", "*"),
    "unstructured": Style("#E69F00", "o"),  # Okabe-Ito orange
    "unstructured CSR": Style("#D55E00", "s"),  # Okabe-Ito vermillion: next to its dense-kernel sibling
    "channel": Style("#0072B2", "^"),  # Okabe-Ito blue
    "iterative": Style("#CC79A7", "v"),  # Okabe-Ito reddish purple
    "quantization": Style("#009E73", "D"),  # Okabe-Ito bluish green
    "architecture": Style("#56B4E9", "P"),  # Okabe-Ito sky blue
    "low-rank": Style("#8C564B", "X"),  # brown
    "chain": Style("#882255", "h"),  # wine
    "dynamic": Style("#999933", "<"),  # olive
    "other": Style("#888888", "."),
}
assert set(_STYLES) == set(FAMILIES), "every family of bench.labels.FAMILIES needs a style"

_NEW_FAMILIES = (
    Style("#332288", "p"),  # Tol indigo
    Style("#44AA99", "d"),  # Tol teal
    Style("#DDCC77", ">"),  # Tol sand
    Style("#CC6677", "H"),  # Tol rose
    Style("#117733", "8"),  # Tol green
    Style("#AA4499", "+"),  # Tol purple
    Style("#88CCEE", "x"),  # Tol cyan
    Style("#661100", "1"),  # dark brown
)
"""Styles of the families beyond `FAMILIES`, in `bench.labels.families()` order: colours and markers none of the
known families use (they repeat past eight new families)."""


def style(family: str) -> Style:
    """The family's style; a family no registered compressor declares is drawn as "other", so a record of a
    compressor this version lacks never breaks a figure."""
    known = _STYLES.get(family)
    if known is not None:
        return known
    new = [name for name in legend_order() if name not in _STYLES]
    if family in new:
        return _NEW_FAMILIES[new.index(family) % len(_NEW_FAMILIES)]
    return _STYLES["other"]


def series_family(series: str) -> str:
    """The family of one of `analysis.SERIES` (the headline figure's series): that of the first registered
    compressor (by name) that declares the series, so the series is drawn in its compressor's colour."""
    for name in registry.names():
        shown = presentation(name)
        if shown.series == series:
            return shown.family
        if shown.csr_series == series:
            return shown.csr_family or shown.family
    return "other"


def family_handles(present: Iterable[str]) -> list[Line2D]:
    """Legend handles (marker and colour) for the given families, once each, in `families()` order."""
    seen = set(present)
    ordered = [name for name in legend_order() if name in seen]
    return [
        Line2D([], [], color=style(name).color, marker=style(name).marker, linestyle="none", markersize=7, label=name)
        for name in ordered
    ]


def family_legend(where: Axes | Figure, families: Iterable[str], extra: Iterable[Artist] = (), **kwargs: Any) -> Legend:
    """A legend of the families present (and any `extra` handles, such as reference lines) on an axes or, placed
    outside the panels so it hides no data, on a whole figure."""
    handles: list[Artist] = [*family_handles(families), *extra]
    options: dict[str, Any] = {"fontsize": 8, "frameon": False, **kwargs}
    return where.legend(handles=handles, **options)
