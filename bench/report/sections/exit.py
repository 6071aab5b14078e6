"""The report's early-exit section: per model and place, what each exit rule keeps of top-1, where the inputs
leave, what the expected MACs promise and what the stream of real inputs measured, on average and at its tail."""

from __future__ import annotations

import functools
import statistics
from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

from bench.figures.exit import plot_exit_tradeoff
from bench.records import ModelRecord
from bench.report.captions import measured_how
from bench.report.markdown import figure_markdown, slug
from bench.report.sections.base import StudySection

__all__ = ["COMPRESSOR", "EXIT", "exit_section"]

COMPRESSOR = "dynamic.early_exit"
# A threshold "keeps" top-1 when it loses at most this much of the reference's (a fraction).
_KEPT = 0.005


def _interval(value: float, low: float, high: float) -> str:
    return f"{value:.2f}x [{low:.2f}, {high:.2f}]"


def _shares(record: ModelRecord) -> str:
    shares = record.compressor_info.get("exit_shares") or []
    return " / ".join(f"{100 * share:.0f}%" for share in shares)


def _by_exit(record: ModelRecord) -> str:
    """The median latency of the stream's inputs that left at each exit: what each path costs on the device."""
    exits = (record.compressor_info.get("stream") or {}).get("exits") or []
    latency = record.latency
    if latency is None or len(exits) != latency.inputs:
        return "n/a"
    count = len(record.compressor_info.get("exit_shares") or [])
    medians = []
    for index in range(count):
        times = [t for t, e in zip(latency.samples_s, exits, strict=True) if e == index]
        medians.append(f"{1e3 * statistics.median(times):.3f}" if times else "-")
    return " / ".join(medians)


def _rule(record: ModelRecord) -> str:
    rule = record.params["rule"]
    return f"{rule} {'>=' if rule == 'confidence' else '<='} {record.params['threshold']:g}"


def _top1(record: ModelRecord) -> float | None:
    return record.accuracy.top1 if record.accuracy is not None else None


def _row(record: ModelRecord) -> list[str]:
    latency, macs = record.latency, record.macs
    assert latency is not None and macs is not None
    theory = macs.theoretical_speedup
    top1 = _top1(record)
    return [
        _rule(record),
        f"{100 * top1:.2f}%" if top1 is not None else "n/a",
        _shares(record),
        f"{theory:.2f}x",
        _interval(latency.speedup_mean, latency.speedup_mean_ci_low, latency.speedup_mean_ci_high),
        _interval(latency.speedup_p99, latency.speedup_p99_ci_low, latency.speedup_p99_ci_high),
        f"{1e3 * latency.candidate.mean_s:.3f} / {1e3 * latency.candidate.p99_s:.3f}",
        _by_exit(record),
        f"{latency.speedup_mean / theory:.0%}",
        ", ".join(record.flags) or "-",
    ]


_HEADERS = [
    "rule", "top-1", "exit shares", "expected-MACs speedup", "mean speedup [95% CI]", "p99 speedup [95% CI]",
    "mean / p99 ms", "p50 ms by exit", "efficiency", "flags",
]  # fmt: skip


def _reference_p50(records: list[ModelRecord]) -> float:
    return statistics.median(r.latency.baseline.p50_s for r in records if r.latency is not None)


def _sentence(model: str, records: list[ModelRecord]) -> str:
    """The fastest rule that keeps top-1, or that none does; and how its slowest inputs fared."""
    reference = next((r.accuracy.baseline for r in records if r.accuracy is not None), None)
    kept = [r for r in records if reference is not None and (_top1(r) or 0.0) >= reference - _KEPT]
    if not kept:
        return f"No threshold kept {model}'s top-1 within {100 * _KEPT:.1f} points of the reference."
    best = max(kept, key=lambda r: r.latency.speedup_mean if r.latency else 0.0)
    latency, macs = best.latency, best.macs
    assert latency is not None and macs is not None and reference is not None
    tail = "faster" if latency.speedup_p99_ci_low > 1 else "slower" if latency.speedup_p99_ci_high < 1 else "no faster"
    return (
        f"The fastest rule within {100 * _KEPT:.1f} points of the reference's top-1 ({100 * reference:.2f}%) is"
        f" {_rule(best)}: {latency.speedup_mean:.2f}x on the mean latency over"
        f" {latency.inputs} real inputs, against {macs.theoretical_speedup:.2f}x the expected MACs promise; its"
        f" slowest inputs (p99) are {tail} than the reference's ({latency.speedup_p99:.2f}x)."
    )


def exit_section(records: list[ModelRecord], directory: Path | None) -> list[str]:
    """Markdown of the early-exit cells in `records`, one table (and figure) per model, place and exits; nothing
    when the run has none."""
    groups: dict[tuple[str, str, str], list[ModelRecord]] = defaultdict(list)
    for record in records:
        if record.compressor == COMPRESSOR and record.ok and record.latency is not None and record.macs is not None:
            groups[(record.model, record.place, str(record.params["exits"]))].append(record)
    lines: list[str] = []
    for (model, place, exits), group in sorted(groups.items()):
        group.sort(key=lambda r: (str(r.params["rule"]), float(r.params["threshold"])))
        info = group[0].compressor_info
        stages = ", ".join(info.get("exit_stages", []))
        alone = info.get("exit_top1_alone") or []
        lines += [
            f"## Early exit: {model}, exits {exits}, {place}",
            "",
            f"Exits: {stages}; heads trained jointly for {info.get('trained_steps')} steps. Top-1 of each exit alone:"
            f" {' / '.join(f'{100 * a:.2f}%' for a in alone) or 'n/a'}. Speedups are against the reference timed on"
            " the same real inputs, each alone at batch 1; intervals bootstrap over the inputs. *p50 ms by exit*: the"
            " median latency of the stream's inputs that left at each exit (the reference's p50:"
            f" {1e3 * _reference_p50(group):.3f} ms).",
            "",
            *tabulate([_row(r) for r in group], _HEADERS, tablefmt="github").splitlines(),
            "",
            _sentence(model, group),
            "",
        ]
        reference = next((r.accuracy.baseline for r in group if r.accuracy is not None), None)
        name = f"early-exit-{slug(model)}-{slug(exits)}-{slug(place)}.png"
        title = f"Early exit: {model}, exits {exits}, {place}"
        draw = functools.partial(plot_exit_tradeoff, group, reference, title)
        caption = (
            "Top-1 against the mean speedup over the input stream, one point per threshold, the reference's top-1"
            f" dashed. {measured_how(group)}"
        )
        lines += figure_markdown(directory, name, "top-1 vs speedup per threshold", caption, draw)
    return lines


EXIT = StudySection("early-exit", exit_section)
"""The early-exit study's entry in `bench.report.sections.RUN_SECTIONS`."""
