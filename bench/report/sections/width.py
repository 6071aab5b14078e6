"""The width study's section: one slimmable model that switches width, against one channel-pruned model per MAC
budget.

A `dynamic.width` cell's MAC budget is its width's measured MACs over the dense model's; the prune.channel cell of
the same model, place, training budget and seed whose measured MACs are closest (within `MATCH`) stands beside it.
Which wins is said only past the noise: top-1 by more than two standard errors of the difference, latency where the
two speedups' 95% intervals do not overlap.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench.figures.width import WidthPoint, plot_width_against_pruning
from bench.records import ModelRecord
from bench.report.captions import measured_how
from bench.report.markdown import figure_markdown, slug
from bench.report.sections.base import StudySection

__all__ = ["MATCH", "WIDTH", "width_section"]

SLIMMABLE, PRUNED = "dynamic.width", "prune.channel"
MATCH = 1.2
"""A pruned cell stands beside a width only if their MACs are within this factor of each other."""


@dataclass(frozen=True)
class _Row:
    """One width of a slimmable model and the pruned model of the closest MAC budget, if the run has one."""

    width: ModelRecord
    pruned: ModelRecord | None


def _budget(record: ModelRecord) -> float:
    assert record.macs is not None, "ok model records have MACs"
    return record.macs.dense / record.macs.baseline


def _seed(record: ModelRecord) -> int:
    return int(record.recovery.get("seed", 0))


def _training(record: ModelRecord) -> tuple[Any, ...]:
    """What one slimmable model is: its model, place, widths, loss, budget and seed (every field but `width`)."""
    shown = tuple(sorted((key, value) for key, value in record.params.items() if key != "width"))
    return record.model, record.place, shown, record.finetune_steps, _seed(record)


def _closest(width: ModelRecord, candidates: Iterable[ModelRecord]) -> ModelRecord | None:
    """The pruned cell whose MACs are closest to the width's (by ratio), if within `MATCH`."""
    ranked = sorted(candidates, key=lambda r: abs(math.log(_budget(r) / _budget(width))))
    if ranked and abs(math.log(_budget(ranked[0]) / _budget(width))) <= math.log(MATCH):
        return ranked[0]
    return None


def _top1(record: ModelRecord) -> float | None:
    return record.accuracy.top1 if record.accuracy is not None else None


def _sliced_top1(record: ModelRecord) -> float | None:
    """Top-1 of the reference sliced to the record's width before any training, as `dynamic.width` measured it."""
    if "width" not in record.params:
        return None
    per_width = record.compressor_info.get("per_width", {})
    return per_width.get(repr(float(record.params["width"])), {}).get("top1_sliced")


def _percent(value: float | None) -> str:
    return f"{100 * value:.2f}%" if value is not None else "n/a"


def _speedup(record: ModelRecord) -> str:
    timing = record.timing
    assert timing is not None, "ok model records have a timing"
    text = f"{timing.speedup_median:.2f}x"
    if timing.speedup_ci_low is not None and timing.speedup_ci_high is not None:
        text += f" [{timing.speedup_ci_low:.2f}, {timing.speedup_ci_high:.2f}]"
    return text + (f" ({', '.join(record.flags)})" if record.flags else "")


def _params(record: ModelRecord) -> str:
    return f"{record.sizes.params_total:,}" if record.sizes is not None else "-"


def _mmacs(record: ModelRecord) -> str:
    return f"{record.macs.dense / 1e6:.3g}" if record.macs is not None else "-"


def _more_accurate(width: ModelRecord, pruned: ModelRecord) -> str | None:
    """Which has the higher top-1, "slimmable" or "pruned", where they differ by more than two standard errors of
    the difference; "neither" within them; None where either has no top-1."""
    a, b = _top1(width), _top1(pruned)
    if a is None or b is None or width.accuracy is None or pruned.accuracy is None:
        return None
    errors = [e for e in (width.accuracy.standard_error, pruned.accuracy.standard_error) if e is not None]
    noise = 2 * math.sqrt(sum(e * e for e in errors))
    if abs(a - b) <= noise:
        return "neither"
    return "slimmable" if a > b else "pruned"


def _faster(width: ModelRecord, pruned: ModelRecord) -> str:
    """Which runs faster, "slimmable" or "pruned", where one speedup's 95% interval lies wholly above the other's;
    else "neither" (an interval the worker could not give counts as its median alone)."""
    assert width.timing is not None and pruned.timing is not None, "ok model records have a timing"

    def interval(record: ModelRecord) -> tuple[float, float]:
        timing = record.timing
        assert timing is not None
        low, high = timing.speedup_ci_low, timing.speedup_ci_high
        return (low, high) if low is not None and high is not None else (timing.speedup_median,) * 2

    (width_low, width_high), (pruned_low, pruned_high) = interval(width), interval(pruned)
    if width_low > pruned_high:
        return "slimmable"
    if pruned_low > width_high:
        return "pruned"
    return "neither"


_WINNER = {"slimmable": "the slimmable width", "pruned": "the pruned model", "neither": "neither"}


def _sentence(row: _Row) -> str:
    width = row.width
    budget = f"MAC budget {_budget(width):.3f} (width {float(width.params['width']):g})"
    if row.pruned is None:
        reference = width.accuracy.baseline if width.accuracy is not None else None
        if float(width.params["width"]) == 1.0 and reference is not None:
            # The full width has no pruned counterpart; what it has to show is what sharing its weights cost it.
            trained = _percent(_top1(width))
            return f"- {budget}, the full model: top-1 {trained} against the reference's {_percent(reference)}."
        return f"- {budget}: no {PRUNED} cell of this run has MACs within {MATCH:g}x of it."
    pruned = row.pruned
    accuracy = _more_accurate(width, pruned)
    accuracy_text = (
        "top-1 n/a"
        if accuracy is None
        else f"top-1: {_WINNER[accuracy]} ({_percent(_top1(width))} vs {_percent(_top1(pruned))}"
        + (", within two standard errors)" if accuracy == "neither" else ")")
    )
    latency = _faster(width, pruned)
    latency_text = f"latency: {_WINNER[latency]} ({_speedup(width)} vs {_speedup(pruned)}" + (
        ", intervals overlap)" if latency == "neither" else ")"
    )
    return (
        f"- {budget}, against {PRUNED} macs_removed={pruned.params.get('macs_removed')} (budget"
        f" {_budget(pruned):.3f}): {accuracy_text}; {latency_text}."
    )


def _table(rows: list[_Row]) -> tuple[list[str], list[list[str]]]:
    headers = [
        "MAC budget", "width", "top-1", "top-1 sliced, untrained", "params", "MMACs", "speedup [95% CI]",
        f"{PRUNED}", "its MAC budget", "its top-1", "its params", "its speedup [95% CI]", "higher top-1", "faster",
    ]  # fmt: skip
    table = []
    for row in rows:
        width = row.width
        line = [
            f"{_budget(width):.3f}", f"{float(width.params['width']):g}", _percent(_top1(width)),
            _percent(_sliced_top1(width)), _params(width), _mmacs(width), _speedup(width),
        ]  # fmt: skip
        pruned = row.pruned
        if pruned is None:
            line += ["-"] * 7
        else:
            accuracy = _more_accurate(width, pruned)
            line += [
                f"macs_removed={pruned.params.get('macs_removed')}", f"{_budget(pruned):.3f}", _percent(_top1(pruned)),
                _params(pruned), _speedup(pruned), accuracy or "n/a", _faster(width, pruned),
            ]  # fmt: skip
        table.append(line)
    return headers, table


def _storage(rows: list[_Row]) -> str:
    """What switching saves in storage: one model for every width against one model per budget (the pruned ones
    beside the widths, and the dense architecture itself for the full width, which no pruning stands for)."""
    width = rows[0].width
    shared = width.compressor_info.get("params_shared")
    if not shared:
        return ""
    text = (
        f"One slimmable model holds its {len(width.compressor_info.get('widths', []))} widths in {shared:,} parameters"
    )
    pruned = list({id(row.pruned): row.pruned for row in rows if row.pruned is not None}.values())
    if not pruned:
        return f"{text}."
    total = sum(r.sizes.params_total for r in pruned if r.sizes is not None)
    models = f"the {len(pruned)} pruned models beside them"
    full = [row.width for row in rows if row.pruned is None and float(row.width.params["width"]) == 1.0]
    if full and full[0].sizes is not None:
        total += full[0].sizes.params_total
        models += " and the dense model for the full width"
    return f"{text}; {models} hold {total:,} together, one model per budget."


def _point(record: ModelRecord) -> WidthPoint:
    timing = record.timing
    assert timing is not None, "ok model records have a timing"
    return WidthPoint(
        budget=_budget(record), top1=_top1(record), sliced_top1=_sliced_top1(record),
        speedup=timing.speedup_median, low=timing.speedup_ci_low, high=timing.speedup_ci_high,
    )  # fmt: skip


def width_section(records: list[ModelRecord], directory: Path | None) -> list[str]:
    """The section's Markdown: per slimmable model (model, place, widths, training), a table of its widths beside
    the pruned models of the same MAC budgets, a sentence per budget saying which wins, and a figure of top-1 and
    speedup against MACs; nothing when the run has no `dynamic.width` cells."""
    usable = [r for r in records if r.ok and r.macs is not None and r.timing is not None]
    slimmable = [r for r in usable if r.compressor == SLIMMABLE]
    if not slimmable:
        return []
    md = [
        "## One model that switches width against one pruned model per MAC budget",
        "",
        f"Each {SLIMMABLE} row is one width of a single slimmable model (one set of weights trained at all its widths"
        f" together, each width timed as the plain model it switches to); beside it, the {PRUNED} model whose MACs"
        f" are closest (within {MATCH:g}x), fine-tuned for the same steps with the same seed.",
        "",
    ]
    models: dict[tuple[Any, ...], list[ModelRecord]] = {}
    for record in slimmable:
        models.setdefault(_training(record), []).append(record)
    for (model, place, shown, steps, seed), widths in models.items():
        pruned = [
            r for r in usable
            if r.compressor == PRUNED and (r.model, r.place, r.finetune_steps, _seed(r)) == (model, place, steps, seed)
        ]  # fmt: skip
        rows = [_Row(width, _closest(width, pruned)) for width in sorted(widths, key=_budget)]
        label = " ".join(f"{key}={value}" for key, value in shown)
        title = f"{model}, {place}: {SLIMMABLE} {label}, {steps} steps" + (f", seed {seed}" if seed else "")
        headers, table = _table(rows)
        md += [f"### {title}", "", tabulate(table, headers, tablefmt="github", disable_numparse=True), ""]
        md += [_sentence(row) for row in rows] + [""]
        storage = _storage(rows)
        md += [storage, ""] if storage else []
        stem = slug(f"width-{model}-{place}-{label}-{steps}-{seed}")
        points = [_point(row.width) for row in rows], [_point(r) for r in sorted(pruned, key=_budget)]
        caption = (
            "Top-1 against measured speedup for each width of the slimmable model and each channel-pruned model,"
            f" speedups with their 95% CIs. {measured_how(widths + pruned)}"
        )
        md += figure_markdown(
            directory, f"{stem}.png", f"{model} slimmable widths against channel pruning", caption,
            partial(plot_width_against_pruning, *points, f"{title}: one switching model, one pruned per budget"),
        )  # fmt: skip
    return md


WIDTH = StudySection("width", width_section)
"""The width study's entry in `bench.report.sections.RUN_SECTIONS`."""
