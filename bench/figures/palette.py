"""One colour and one marker per compressor family, the same in every figure of every report.

A reader learns once that channel pruning is the blue triangle and then reads every figure by it; colours
picked per figure (matplotlib's cycle) would give the same family a different colour in the next figure. The
colours are the Okabe-Ito palette, safe for the common colour-vision deficiencies, with a few darker ones for the
families beyond its seven; the markers tell the families apart where the colours do not (greyscale print).
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

from bench.analysis.series import SERIES
from bench.labels import FAMILIES

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

_SERIES_FAMILY = dict(zip(SERIES, ("unstructured", "unstructured CSR", "channel"), strict=True))


def style(family: str) -> Style:
    """The family's style; an unknown family is drawn as "other", so a new compressor never breaks a figure."""
    return _STYLES.get(family, _STYLES["other"])


def series_family(series: str) -> str:
    """The family of one of `analysis.SERIES` (the headline figure's three series)."""
    return _SERIES_FAMILY.get(series, "other")


def family_handles(families: Iterable[str]) -> list[Line2D]:
    """Legend handles (marker and colour) for the given families, once each, in `FAMILIES` order."""
    present = set(families)
    ordered = [name for name in FAMILIES if name in present]
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
