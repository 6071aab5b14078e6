"""The lottery study's section: top-1 against sparsity for the ticket, its controls and one-shot pruning, at one
training budget, with the seed spread, and what the tickets cost to run.

Methods, from the records:
- ticket: `prune.iterative` rewind=init (Frankle & Carbin 2019);
- late rewind: rewind=early, one series per rewind step (Frankle et al. 2020);
- fine-tune: rewind=none, the survivors kept as trained between rounds;
- reinit: rewind=reinit, the ticket's masks with random values (the control);
- one-shot: `prune.unstructured` pruned once and fine-tuned (recovery method finetune) for the same budget.

A point is one configuration over its seeds: the mean top-1, and the seed spread as the range (lowest to highest
seed). The ticket "beats reinit" at a sparsity only where the gap between the means is larger than the larger of
the two spreads; with one seed there is no spread, and the sentence says so.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench.analysis.lottery import SeedPoint, lottery_points
from bench.figures.lottery import plot_lottery
from bench.records import ModelRecord
from bench.report.captions import measured_how
from bench.report.markdown import figure_markdown, slug
from bench.report.sections.base import StudySection

__all__ = ["LOTTERY", "lottery_section", "ticket_sentence"]


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def ticket_sentence(ticket: SeedPoint, reinit: SeedPoint) -> str:
    """Whether the ticket beat reinit at one sparsity by more than the seed spread, in one sentence."""
    gap = 100 * (ticket.mean - reinit.mean)
    spread = 100 * max(ticket.spread, reinit.spread)
    seeds = min(len(ticket.seeds), len(reinit.seeds))
    at = f"At {ticket.sparsity:.3f} sparsity"
    means = f"the ticket ({_pct(ticket.mean)}) {{}} reinit ({_pct(reinit.mean)})"
    if seeds < 2:
        verb = "beat" if gap > 0 else "did not beat"
        return f"{at} {means.format(verb)} by {gap:.2f} points with one seed: no seed spread to judge the gap by."
    spread_text = f"the seed spread ({spread:.2f} points over {seeds} seeds)"
    if gap > spread:
        return f"{at} {means.format('beat')} by {gap:.2f} points, more than {spread_text}."
    if -gap > spread:
        swapped = f"reinit ({_pct(reinit.mean)}) beat the ticket ({_pct(ticket.mean)})"
        return f"{at} {swapped} by {-gap:.2f} points, more than {spread_text}."
    return f"{at} {means.format('did not beat')} by more than {spread_text}: the gap is {gap:+.2f} points."


def _cell(point: SeedPoint | None) -> str:
    if point is None:
        return "-"
    if len(point.seeds) < 2:
        return _pct(point.mean)
    return f"{_pct(point.mean)} [{100 * point.low:.2f}, {100 * point.high:.2f}]"


def _accuracy_table(series: dict[str, list[SeedPoint]]) -> tuple[list[str], list[list[str]]]:
    """Rows: sparsities (rounded to 3 places, as configurations meet there); columns: each method's top-1."""
    levels = sorted({round(p.sparsity, 3) for points in series.values() for p in points})
    headers = ["sparsity", *[f"{method} top-1 [seed range]" for method in series]]
    rows = []
    for level in levels:
        row = [f"{level:.3f}"]
        for points in series.values():
            row.append(_cell(next((p for p in points if round(p.sparsity, 3) == level), None)))
        rows.append(row)
    return headers, rows


def _speedup_text(records: Sequence[ModelRecord]) -> str:
    speedups = [r.timing.speedup_median for r in records if r.timing is not None]
    if not speedups:
        return "-"
    text = f"{statistics.median(speedups):.2f}x"
    return text + (f" [{min(speedups):.2f}, {max(speedups):.2f}]" if len(speedups) > 1 else "")


def _latency_table(series: dict[str, list[SeedPoint]]) -> tuple[list[str], list[list[str]]]:
    """Rows: each method's points; columns: what executed, what the MACs promise, what was measured per place."""
    places = list(dict.fromkeys(r.place for points in series.values() for p in points for r in p.records))
    headers = ["method", "sparsity", "executed as", "non-zero / params", "theor. speedup (MACs)"]
    headers += [f"speedup {place} (median [range] over seeds)" for place in places]
    rows = []
    for method, points in series.items():
        for point in points:
            first = point.records[0]
            executed = sorted({r.executed_as or "-" for r in point.records})
            sizes = first.sizes
            row = [
                method, f"{point.sparsity:.3f}", "; ".join(executed),
                f"{sizes.params_nonzero:,} / {sizes.params_total:,}" if sizes else "-",
                f"{first.macs.theoretical_speedup:.2f}x" if first.macs else "-",
            ]  # fmt: skip
            row += [_speedup_text([r for r in point.records if r.place == place]) for place in places]
            rows.append(row)
    return headers, rows


def _speed_sentence(series: dict[str, list[SeedPoint]]) -> str:
    tickets = [r for p in series.get("ticket", []) for r in p.records if r.timing is not None]
    if not tickets:
        return ""
    speedups = [r.timing.speedup_median for r in tickets if r.timing is not None]
    low, high = min(speedups), max(speedups)
    measured = f"{low:.2f}x" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}x to {high:.2f}x"
    dense = all((r.executed_as or "").startswith("dense") for r in tickets)
    how = (
        "executed as dense kernels over stored zeros"
        if dense
        else "executed as " + ", ".join(sorted({r.executed_as or "-" for r in tickets}))
    )
    return (
        f"A winning ticket is unstructured sparsity: {how}, the tickets measured {measured} the dense baseline's"
        " speed, however few weights they keep; the theoretical"
        " speedup (MACs) is what sparse kernels or hardware could at best realize, not what ran."
    )


def lottery_section(records: list[ModelRecord], directory: Path | None) -> list[str]:
    """The lottery study's Markdown: per model and budget, the figure, one sentence per sparsity (ticket against
    reinit), the top-1 table and the latency table; nothing when the run has no `prune.iterative` cells."""
    found = lottery_points(records)
    if not found:
        return []
    md = ["## Lottery tickets: iterative pruning with rewinding, at a fixed training budget", ""]
    for (model, budget, scope), series in found.items():
        baseline = next((r.accuracy.baseline for p in _all(series) for r in p.records if r.accuracy), None)
        md += [f"### {model}, {budget} training steps per cell, {scope} scope", ""]
        md += [
            f"Every cell trains {budget} steps in all: `prune.iterative` splits them over its rounds, one-shot"
            " pruning fine-tunes for all of them. Points are the mean top-1 over seeds; error bars and brackets"
            " are the seed range (lowest to highest seed).",
            "",
        ]
        caption = (
            "Top-1 on the held-out set against weight sparsity, per rewinding method: the mean over seeds, bars"
            f" the seed range. {measured_how([r for p in _all(series) for r in p.records])}"
        )
        md += figure_markdown(
            directory, f"lottery-{slug(model)}-{budget}-{slug(scope)}.png", f"{model} top-1 vs sparsity", caption,
            partial(plot_lottery, series, baseline, f"{model}, {budget} steps, {scope} scope: top-1 vs sparsity"),
        )  # fmt: skip
        reinits = {_rounds_key(p): p for p in series.get("reinit", [])}
        sentences = [
            ticket_sentence(ticket, reinits[_rounds_key(ticket)])
            for ticket in series.get("ticket", [])
            if _rounds_key(ticket) in reinits
        ]
        md += [line for sentence in sentences for line in (sentence, "")]
        headers, rows = _accuracy_table(series)
        md += [tabulate(rows, headers, tablefmt="github", disable_numparse=True), ""]
        speed = _speed_sentence(series)
        md += [speed, ""] if speed else []
        headers, rows = _latency_table(series)
        md += [tabulate(rows, headers, tablefmt="github", disable_numparse=True), ""]
    return md


def _all(series: dict[str, list[SeedPoint]]) -> list[SeedPoint]:
    return [point for points in series.values() for point in points]


def _rounds_key(point: SeedPoint) -> tuple[Any, ...]:
    """Ticket and reinit meet at the same rate and rounds (hence the same masks, seed by seed)."""
    params = point.records[0].params
    return params["rate"], params["rounds"]


LOTTERY = StudySection("lottery", lottery_section)
"""The lottery study's entry in `bench.report.sections.RUN_SECTIONS`."""
