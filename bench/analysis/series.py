"""Derived figures read from records: the series the plots draw, the break-even sparsity, and the finding.

Kept apart from tables and plots so the sentence a report prints and the numbers it draws come from one place.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from bench.labels import family, presentation, short_label
from bench.records import CellRecord, LayersRecord, ModelRecord, Record
from compressors.presentation import SERIES

__all__ = [
    "variant",
    "Point",
    "speedup_series",
    "layer_series",
    "break_even",
    "finding",
    "SERIES",
    "headline_series",
    "smallest_encoding",
    "smallest_bytes",
    "pareto_front",
    "accuracy_points",
    "AccuracyPoint",
]

# A speedup below this is "no speedup": it is within what timing noise on a shared machine can produce.
NO_SPEEDUP = 1.10


def variant(record: CellRecord) -> str:
    shown = " ".join(f"{key}={value}" for key, value in sorted(record.params.items()) if value is not None)
    return f"{record.compressor} {shown}".strip()


@dataclass(frozen=True)
class Point:
    """One measured speedup at one level of compression (fraction of MACs removed, or sparsity)."""

    x: float
    speedup: float
    low: float | None
    high: float | None
    label: str


def headline_series(record: CellRecord) -> str | None:
    """The series of `SERIES` (the headline figure's, in legend order) a cell is a point of, as its compressor
    declares (`compressors.presentation`); None for a cell in none of them."""
    return presentation(record.compressor).series_of(record.params)


def speedup_series(records: Sequence[Record]) -> dict[tuple[str, str], dict[str, list[Point]]]:
    """(model, where) -> series name -> points sorted by the fraction of MACs removed (theoretical)."""
    out: dict[tuple[str, str], dict[str, list[Point]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        name = headline_series(record)
        if not isinstance(record, ModelRecord) or record.timing is None or record.macs is None or name is None:
            continue
        timing = record.timing
        removed = 1 - 1 / record.macs.theoretical_speedup
        point = Point(removed, timing.speedup_median, timing.speedup_ci_low, timing.speedup_ci_high, variant(record))
        out[(record.model, record.place)][name].append(point)
    for series in out.values():
        for points in series.values():
            points.sort(key=lambda p: p.x)
    return out


def layer_series(records: Sequence[Record]) -> dict[tuple[str, str], list[LayersRecord]]:
    """(model, where) -> the CSR layer-level records sorted by sparsity.

    A record with a sparsity ``pattern`` (2:4 on a GPU) is left out: its sparsity is fixed by the pattern and
    its kernel is another one, so it is no point of the CSR break-even curve.
    """
    out: dict[tuple[str, str], list[LayersRecord]] = defaultdict(list)
    for record in records:
        if isinstance(record, LayersRecord) and record.ok and record.pattern is None:
            out[(record.model, record.place)].append(record)
    for group in out.values():
        group.sort(key=lambda r: float(r.params["sparsity"]))
    return out


def break_even(points: list[tuple[float, float]]) -> tuple[str, float | None]:
    """The sparsity where a sparse kernel starts to beat dense, from (sparsity, speedup) pairs sorted by sparsity.

    Interpolates log(speedup) linearly between the last grid point below 1 and the first at or above it.

    Returns:
        A phrase for the report ("0.93", "<= 0.5", "> 0.99 (not reached)") and the value when it was bracketed.
    """
    if not points:
        return "n/a", None
    for index, (sparsity, speedup) in enumerate(points):
        if speedup >= 1.0:
            if index == 0:
                return f"<= {sparsity:g}", None
            s0, v0 = points[index - 1]
            fraction = -math.log(v0) / (math.log(speedup) - math.log(v0))
            value = s0 + fraction * (sparsity - s0)
            return f"{value:.3f}", value
    return f"> {points[-1][0]:g} (not reached)", None


def _fmt(value: float) -> str:
    return f"{value:.2f}x"


def finding(series: dict[str, list[Point]], layer_break_even: str | None, model: str, place: str) -> str:
    """One or two sentences, from the numbers, on whether weight sparsity alone gave a speedup here."""
    dense, csr, channel = (series.get(name, []) for name in SERIES)
    if not dense or not channel:
        return (
            f"{model} on {place}: the finding needs unstructured (dense kernels) and channel-pruning cells;"
            " run them to test it."
        )
    dense_best = max(p.speedup for p in dense)
    csr_low = [p for p in csr if p.x <= 0.9 + 1e-9]
    channel_lows = [p.low if p.low is not None else p.speedup for p in channel]
    dense_holds = dense_best < NO_SPEEDUP
    csr_holds = all(p.speedup < NO_SPEEDUP for p in csr_low)
    channel_holds = min(channel_lows) > NO_SPEEDUP
    most_sparse = max(p.x for p in dense + csr)
    parts = [
        f"unstructured pruning up to {most_sparse:.0%} of MACs removed ran at most {_fmt(dense_best)} on dense kernels"
    ]
    if csr:
        parts.append(f"{_fmt(max(p.speedup for p in csr))} at best on CSR kernels")
    evidence = (
        ", ".join(parts)
        + f", while channel pruning at the same MAC budgets ran {_fmt(min(p.speedup for p in channel))}"
        + f" to {_fmt(max(p.speedup for p in channel))}"
    )
    if dense_holds and csr_holds and channel_holds:
        verdict = f"Finding reproduced for {model} on {place}: {evidence}."
    else:
        failed = [
            text
            for text, holds in (
                (f"dense-kernel sparsity reached {_fmt(dense_best)}", dense_holds),
                ("CSR kernels were faster at sparsity <= 90%", csr_holds),
                (f"channel pruning was not reliably faster than {NO_SPEEDUP:.2f}x", channel_holds),
            )
            if not holds
        ]
        verdict = f"Finding NOT reproduced for {model} on {place} ({'; '.join(failed)}): {evidence}."
    wins = [p for p in csr if p.speedup >= 1.0]
    if wins:
        breaks = f" Where it breaks: CSR kernels first beat dense at {wins[0].x:.0%} of MACs removed"
        breaks += f" ({_fmt(wins[0].speedup)})"
    elif csr:
        breaks = " CSR kernels never beat dense kernels at the model level"
    else:  # an engine without CSR kernels (onnxruntime skips those cells) has no such cell to judge
        breaks = " No CSR-kernel cell ran here"
    if layer_break_even is not None:
        breaks += f"; layer-level break-even sparsity: {layer_break_even}."
    else:
        breaks += "."
    return verdict + breaks


def smallest_encoding(record: ModelRecord) -> tuple[str, int]:
    """The smallest of the real encodings measured for a record (each decodes back to the model it ran)."""
    if record.sizes is None:
        raise ValueError(f"record {record.cell_id} ({record.status}) has no sizes")
    return record.sizes.smallest()


def smallest_bytes(record: ModelRecord) -> int:
    return smallest_encoding(record)[1]


class AccuracyPoint(NamedTuple):
    """One cell on an accuracy-cost plane: its cost (seconds or bytes), top-1 (a fraction), short label and family
    (`bench.labels`), so a figure can name and colour it without the record."""

    cost: float
    top1: float
    label: str
    family: str


_P = TypeVar("_P", bound=tuple[Any, ...])


def pareto_front(points: Sequence[_P]) -> list[_P]:
    """The (cost, accuracy, ...) points no other point beats on both: lower cost and higher accuracy."""
    front: list[_P] = []
    for point in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or point[1] > front[-1][1]:
            front.append(point)
    return front


def accuracy_points(records: Sequence[Record], cost: str) -> dict[tuple[str, str], list[AccuracyPoint]]:
    """(model, where) -> an `AccuracyPoint` for every ok cell with a real accuracy.

    Args:
        cost: "latency" (median seconds on the target) or "size" (smallest real encoding, bytes).
    """
    out: dict[tuple[str, str], list[AccuracyPoint]] = defaultdict(list)
    for record in records:
        if not isinstance(record, ModelRecord) or record.timing is None or record.accuracy is None:
            continue
        if record.accuracy.top1 is None:
            continue
        value = record.timing.median_s if cost == "latency" else smallest_bytes(record)
        point = AccuracyPoint(value, record.accuracy.top1, short_label(record), family(record))
        out[(record.model, record.place)].append(point)
    return out
