"""Everything a report says, built once from a run's records: the finding, per model its records, figures and
model-level sections, then the run-level sections and the notes. The Markdown, the HTML and the terminal render it.

No section is named here: the report walks `sections.MODEL_SECTIONS` inside each model's part and
`sections.RUN_SECTIONS` after the models.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from bench.analysis.engines import engine_comparisons, engine_finding
from bench.analysis.series import finding, speedup_series
from bench.records import ModelRecord, Record
from bench.report.model_figures import headline_figures, model_figures
from bench.report.sections import MODEL_SECTIONS, RUN_SECTIONS, SectionText, combined, rendered
from bench.report.sections.layers import layer_break_evens
from bench.report.summary import summary_tables
from bench.report.tables import machine_table, model_table, notes
from bench.store.database import Run

__all__ = ["ModelPart", "ReportParts", "report_parts", "markdown_lines"]


@dataclass(frozen=True)
class ModelPart:
    """One model's share of the report: its records, the Markdown of its figures, and its model-level sections
    (`sections.MODEL_SECTIONS`) as one."""

    model: str
    records: list[ModelRecord]
    headline: list[str]
    figures: list[str]
    sections: SectionText


@dataclass(frozen=True)
class ReportParts:
    """Everything a report says, built once from the records and rendered as Markdown, HTML and terminal text.

    The Markdown fields are lists of lines. `sections` has the run-level sections by their group of
    `sections.RUN_SECTIONS`, each group's sections as one. `terminal` is what the summary prints before the finding
    (each model's summary tables and sections, then the run-level sections), fitted to its width; `terminal_wide`
    the same with every column of every table, which `--wide` prints.
    """

    run: Run
    records: list[Record]
    findings: list[str]
    models: list[ModelPart]
    sections: dict[str, SectionText]
    notes: list[str]
    terminal: str
    terminal_wide: str


def report_parts(run: Run, records: list[Record], directory: Path | None) -> ReportParts:
    """Build every part of the report (drawing its figures into `directory`) from the run's records."""
    break_evens = layer_break_evens(records)
    findings = []
    for key, series in speedup_series(records).items():
        model, place = key
        findings.append(finding(series, break_evens.get(key, (None, None))[0], model, place))
    findings += [engine_finding(comparison) for comparison in engine_comparisons(records).values()]

    by_model: dict[str, list[ModelRecord]] = defaultdict(list)
    for record in records:
        if isinstance(record, ModelRecord):
            by_model[record.model].append(record)
    models, terminal, wide = [], "", ""
    for model, model_records in by_model.items():
        shown = rendered(MODEL_SECTIONS, model_records, directory)
        models.append(ModelPart(
            model, model_records, headline_figures(model_records, directory), model_figures(model_records, directory),
            shown,
        ))  # fmt: skip
        headers, rows = model_table(model_records, full=False)
        terminal += "\n" + "\n".join(summary_tables(model_records)) + "\n" + shown.terminal
        wide += f"\n{model}\n{tabulate(rows, headers, tablefmt='simple')}\n" + shown.wide
    sections = {group: rendered(table, records, directory) for group, table in RUN_SECTIONS.items()}
    after = combined(sections.values())
    return ReportParts(
        run, records, findings, models, sections, notes(records), terminal + after.terminal, wide + after.wide
    )


def markdown_lines(parts: ReportParts) -> list[str]:
    """The Markdown report: run, targets, finding, then per model its figures, full table and sections, then the
    run-level sections and the notes."""
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
        md += part.figures + part.sections.markdown
    return md + [line for text in parts.sections.values() for line in text.markdown] + parts.notes
