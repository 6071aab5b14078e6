"""Everything a report says, built once from a run's records: the finding, per model its records, figures and
engine comparison, the layer sweeps, the studies and the notes. The Markdown, the HTML and the terminal render it."""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from tabulate import tabulate

from bench.analysis.engines import engine_comparisons, engine_finding
from bench.analysis.series import break_even, finding, layer_series, speedup_series
from bench.figures.plots import plot_layers
from bench.records import LayersRecord, ModelRecord, Record
from bench.report.captions import measured_how
from bench.report.markdown import figure_markdown, slug
from bench.report.model_figures import headline_figures, model_figures
from bench.report.sections import study_sections
from bench.report.sections.engines import engine_sections
from bench.report.summary import fit_table
from bench.report.tables import layer_table, machine_table, model_table, notes, pattern_layers
from bench.store.database import Run

__all__ = ["ModelPart", "ReportParts", "report_parts", "markdown_lines"]


@dataclass(frozen=True)
class ModelPart:
    """One model's share of the report: its records, and the Markdown of its figures and engine comparison."""

    model: str
    records: list[ModelRecord]
    headline: list[str]
    figures: list[str]
    engines: list[str]


@dataclass(frozen=True)
class ReportParts:
    """Everything a report says, built once from the records and rendered as Markdown, HTML and terminal text.

    The Markdown fields are lists of lines. `terminal_layers` is the layer sweeps' tables fitted to the summary's
    width; `terminal_wide` the wide terminal text (every column of every model, engine and layer table), which
    `--wide` prints.
    """

    run: Run
    records: list[Record]
    findings: list[str]
    models: list[ModelPart]
    layers: list[str]
    studies: list[str]
    notes: list[str]
    terminal_layers: str
    terminal_wide: str


def report_parts(run: Run, records: list[Record], directory: Path | None) -> ReportParts:
    """Build every part of the report (drawing its figures into `directory`) from the run's records."""
    layers = layer_series(records)
    layer_break_even: dict[tuple[str, str], tuple[str, float | None]] = {}
    for key, group in layers.items():
        layer_break_even[key] = break_even([(float(r.params["sparsity"]), r.speedup_median or 0.0) for r in group])
    findings = []
    for key, series in speedup_series(records).items():
        model, place = key
        phrase = layer_break_even.get(key, (None, None))[0]
        findings.append(finding(series, phrase, model, place))
    comparisons = engine_comparisons(records)
    findings += [engine_finding(comparison) for comparison in comparisons.values()]

    by_model: dict[str, list[ModelRecord]] = defaultdict(list)
    for record in records:
        if isinstance(record, ModelRecord):
            by_model[record.model].append(record)
    wide, models = io.StringIO(), []
    for model, model_records in by_model.items():
        headers, rows = model_table(model_records, full=False)
        wide.write(f"\n{model}\n{tabulate(rows, headers, tablefmt='simple')}\n")
        engines = engine_sections([c for c in comparisons.values() if c.model == model], directory, wide)
        models.append(ModelPart(
            model, model_records, headline_figures(model_records, directory), model_figures(model_records, directory),
            engines,
        ))  # fmt: skip
    layer_text, layer_short, layer_md = _layer_sections(records, layers, layer_break_even, directory)
    wide.write(layer_text)
    studies = study_sections([r for r in records if isinstance(r, ModelRecord)], directory)
    return ReportParts(run, records, findings, models, layer_md, studies, notes(records), layer_short, wide.getvalue())


def markdown_lines(parts: ReportParts) -> list[str]:
    """The Markdown report: run, targets, finding, then per model its figures and full table, then the layer
    sweeps, the studies and the notes."""
    run = parts.run
    commit = run.commit.get("commit") or "unknown"
    md = [
        f"# compression-bench run {run.run_id}", "",
        f"- started {run.started_at}, finished {run.finished_at or '-'} ({run.status})",
        f"- code: commit {commit}{' (dirty)' if run.commit.get('dirty') else ''}", "",
    ]  # fmt: skip
    headers, rows = machine_table(parts.records)
    md += ["## Targets", "", tabulate(rows, headers, tablefmt="github"), ""]
    if parts.findings:
        md += ["## Finding", ""] + [line for text in parts.findings for line in (text, "")]
    for part in parts.models:
        headers, rows = model_table(part.records, full=True)
        md += [f"## {part.model}", "", *part.headline, tabulate(rows, headers, tablefmt="github"), ""]
        md += part.figures + part.engines
    return md + parts.layers + parts.studies + parts.notes


def _layer_sections(
    records: list[Record], layers: dict[tuple[str, str], list[LayersRecord]],
    break_evens: dict[tuple[str, str], tuple[str, float | None]], directory: Path | None,
) -> tuple[str, str, list[str]]:  # fmt: skip
    """The layer sweeps' terminal tables (wide, and fitted to the summary's width) and Markdown (tables and
    figures), per model and place."""
    text, short, md = io.StringIO(), io.StringIO(), []
    patterned = pattern_layers(records)
    for model, place in dict.fromkeys([*layers, *patterned]):
        group = layers.get((model, place), [])
        headers, rows = layer_table(group + patterned.get((model, place), []))
        table = tabulate(rows, headers, tablefmt="simple")
        fitted = "\n".join(fit_table(_LAYER_HEADERS, [[str(c) for c in row] for row in rows], right=(0, 2, 3)))
        if not group:
            text.write(f"\n{model} layer level ({place})\n{table}\n")
            short.write(f"\n{model} layer level ({place})\n{fitted}\n")
            md += [f"## {model}, layer level ({place})", "", tabulate(rows, headers, tablefmt="github"), ""]
            continue
        phrase, value = break_evens[(model, place)]
        text.write(f"\n{model} layer level ({place}), break-even sparsity {phrase}\n{table}\n")
        short.write(f"\n{model} layer level ({place}), break-even sparsity {phrase}\n{fitted}\n")
        md += [
            f"## {model}, layer level ({place})", "",
            f"Break-even sparsity of CSR (time-weighted over all layers): {phrase}.", "",
            tabulate(rows, headers, tablefmt="github"), "",
        ]  # fmt: skip
        caption = (
            "CSR against dense GEMM speedup per distinct GEMM shape of the model (thin lines) and time-weighted over"
            f" all of them (thick), against per-layer sparsity. {measured_how(group)}"
        )
        md += figure_markdown(
            directory, f"layers-{slug(model)}-{slug(place)}.png", f"{model} layer-level speedup", caption,
            partial(plot_layers, group, value, f"{model} layers, {place}: CSR vs dense GEMM"),
        )  # fmt: skip
    return text.getvalue(), short.getvalue(), md


_LAYER_HEADERS = (
    "sparsity", "sparse kernel", "dense\nGEMMs ms", "sparse\nGEMMs ms", "speedup\n(all layers)",
    "shapes where\nsparse wins", "theor.\nspeedup",
)  # fmt: skip
"""`report_tables.layer_table`'s columns, in two lines each for the terminal."""
