"""The report's section on recovery methods: for each compressed model, which way of spending the training budget
(fine-tuning, logits / feature / relational distillation, training from scratch) gave the best top-1, over seeds.

A table per model: rows are compressor variants, columns the methods, each cell the mean top-1 over the seeds
with its spread and count; the best of a row is in bold. One sentence per row says which method won and whether
by more than the seed spread, since with a few seeds a difference smaller than that is not a finding.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench.analysis.series import variant
from bench.records import ModelRecord
from bench.report.sections.base import StudySection

__all__ = ["MethodResult", "RECOVERY", "SHOWN_METHODS", "recovery_results", "recovery_section"]

SHOWN_METHODS = ("feature", "relational", "scratch-e", "scratch-b")
"""Methods whose cells make the section appear on their own; otherwise it appears where one compressed model was
recovered by more than one method."""


@dataclass(frozen=True)
class MethodResult:
    """One method's top-1 over seeds for one compressed model.

    Attributes:
        method: The column label: the method, with its settings where the run has it at several.
        top1: Top-1 (fraction) per seed, in seed order.
        steps: The mini-batches each seed really trained (the record's facts, else the cell's budget).
        elapsed_s: The cells' wall time together: recovery, export and timing.
    """

    method: str
    top1: tuple[float, ...]
    steps: tuple[int, ...]
    elapsed_s: float

    @property
    def mean(self) -> float:
        return statistics.fmean(self.top1)

    @property
    def spread(self) -> float | None:
        """The sample standard deviation over seeds; None with one seed."""
        return statistics.stdev(self.top1) if len(self.top1) > 1 else None

    def text(self, bold: bool) -> str:
        spread = f" ± {100 * self.spread:.2f}" if self.spread is not None else ""
        shown = f"{100 * self.mean:.2f}{spread} (n={len(self.top1)})"
        if self.method.startswith("scratch"):
            steps = sorted(set(self.steps))
            shown += f", {'/'.join(str(s) for s in steps)} steps"
        return f"**{shown}**" if bold else shown


def _settings(record: ModelRecord) -> dict[str, Any]:
    return {key: value for key, value in record.recovery.items() if key != "seed"}


def _labels(records: Sequence[ModelRecord]) -> dict[str, str]:
    """Column label per recovery setting (JSON): the method, and its settings where it appears at several."""
    settings = {json.dumps(_settings(r), sort_keys=True): _settings(r) for r in records}
    per_method: dict[str, int] = defaultdict(int)
    for value in settings.values():
        per_method[value["method"]] += 1
    labels = {}
    for key, value in settings.items():
        shown = " ".join(f"{k}={v}" for k, v in sorted(value.items()) if k != "method")
        labels[key] = f"{value['method']} {shown}" if per_method[value["method"]] > 1 and shown else value["method"]
    return labels


def recovery_results(records: Sequence[ModelRecord]) -> dict[str, dict[str, list[MethodResult]]]:
    """model -> compressor variant -> one result per method, in the run's order.

    One record per seed counts: a cell timed by several engines or on several targets shares one recovered model,
    and top-1 is taken from the first engine the run lists (the others run the same weights).
    """
    recovered = [r for r in records if r.ok and r.recovery.get("method") and r.accuracy and r.accuracy.top1 is not None]
    if not recovered:
        return {}
    engine = recovered[0].engine
    labels = _labels(recovered)
    seen: dict[tuple[str, str, str, int], ModelRecord] = {}
    elapsed: dict[tuple[str, str, str], float] = defaultdict(float)
    for record in recovered:
        key = (record.model, variant(record), labels[json.dumps(_settings(record), sort_keys=True)])
        elapsed[key] += record.elapsed_s or 0.0
        if record.engine == engine:
            seen.setdefault((*key, int(record.recovery.get("seed", 0))), record)
    grouped: dict[tuple[str, str, str], list[ModelRecord]] = defaultdict(list)
    for (model, name, label, _), record in sorted(seen.items(), key=lambda item: item[0][3]):
        grouped[(model, name, label)].append(record)
    results: dict[str, dict[str, list[MethodResult]]] = defaultdict(lambda: defaultdict(list))
    for (model, name, label), group in grouped.items():
        top1 = tuple(float(r.accuracy.top1) for r in group if r.accuracy and r.accuracy.top1 is not None)
        steps = tuple(int(r.compressor_info.get("recovery", {}).get("steps", r.finetune_steps)) for r in group)
        results[model][name].append(MethodResult(label, top1, steps, elapsed[(model, name, label)]))
    return {model: dict(rows) for model, rows in results.items()}


def _shown(results: Mapping[str, Mapping[str, list[MethodResult]]]) -> bool:
    methods = [result.method.split()[0] for rows in results.values() for row in rows.values() for result in row]
    several = any(len(row) > 1 for rows in results.values() for row in rows.values())
    return several or any(method in SHOWN_METHODS for method in methods)


def _verdict(name: str, row: Sequence[MethodResult]) -> str:
    ranked = sorted(row, key=lambda result: result.mean, reverse=True)
    best = ranked[0]
    if len(ranked) == 1:
        return f"{name}: only {best.method} was run ({100 * best.mean:.2f}%)."
    second = ranked[1]
    margin = 100 * (best.mean - second.mean)
    spreads = [result.spread for result in (best, second) if result.spread is not None]
    lead = f"{name}: {best.method} won ({100 * best.mean:.2f}%), {margin:.2f} points above {second.method}"
    if not spreads:
        return f"{lead}; one seed each, so no spread to judge the margin by."
    spread = 100 * max(spreads)
    if margin > spread:
        return f"{lead}, more than the seed spread ({spread:.2f}): a clear win."
    return f"{lead}, within the seed spread ({spread:.2f}): no clear winner."


def recovery_section(records: list[ModelRecord], directory: Path | None) -> list[str]:
    """The section's Markdown lines, or none when no compressed model was recovered by a method worth comparing.

    `directory` is unused: the section is tables and sentences only.
    """
    results = recovery_results(records)
    if not results or not _shown(results):
        return []
    md = [
        "## Recovery methods", "",
        "Top-1 (%) after recovery: mean ± sample standard deviation over seeds (n seeds); the best of each row in "
        "bold. Fine-tuning and distillation train the cell's budget from the compressed weights; scratch-e and "
        "scratch-b train from random weights for the steps shown (the reference's steps; its compute in MACs).", "",
    ]  # fmt: skip
    for model, rows in results.items():
        methods = list(dict.fromkeys(result.method for row in rows.values() for result in row))
        table = []
        for name, row in rows.items():
            by_method = {result.method: result for result in row}
            best = max(result.mean for result in row)
            table.append([name, *(by_method[m].text(by_method[m].mean == best) if m in by_method else "-"
                                  for m in methods)])  # fmt: skip
        md += [f"### {model}", "", tabulate(table, ["compressor", *methods], tablefmt="github"), ""]
        md += [f"- {_verdict(name, row)}" for name, row in rows.items()]
        times: dict[str, float] = defaultdict(float)
        for row in rows.values():
            for result in row:
                times[result.method] += result.elapsed_s
        md += ["", "Time of each method's cells (recovery, export and timing): "
               + ", ".join(f"{method} {seconds:.0f} s" for method, seconds in times.items()) + ".", ""]  # fmt: skip
    return md


RECOVERY = StudySection("recovery", recovery_section)
"""The recovery study's entry in `bench.report.sections.RUN_SECTIONS`."""
