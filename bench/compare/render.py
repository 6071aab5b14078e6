"""A comparison as a terminal table (`labels.SCREEN_WIDTH` columns) and as GitHub-flavoured Markdown (a step summary,
a PR comment).

Changed cells come first, the worst first; unchanged ones are a count unless every cell is asked for, so a
regression is never scrolled away by forty quiet rows.
"""

from __future__ import annotations

from tabulate import tabulate

from bench.compare.comparison import Comparison
from bench.compare.rules import VERDICTS
from bench.compare.verdicts import CellComparison
from bench.labels import SCREEN_WIDTH, short_label, short_place
from bench.records import Record

__all__ = ["terminal", "markdown", "summary", "headline", "short_labels"]

# The order changed cells are listed in: what fails or needs a rerun first.
_ORDER = ("regressed", "failed", "inconclusive", "improved", "new", "gone", "unchanged")
_HEADERS = ["cell", "verdict", "latency [95% CI]", "speedup", "top-1 pt", "bytes", "why"]
_GAP = 2
"""Spaces tabulate puts between two columns."""
# Column widths of the terminal table but the last, which takes the rest of the screen (a column is never narrower
# than its header plus tabulate's padding of two, hence 10 for "top-1 pt"); longer text wraps within its column.
_LEFT = [30, 9, 19, 12, 10, 12]
_WIDTHS = [*_LEFT, SCREEN_WIDTH - sum(_LEFT) - _GAP * len(_LEFT)]


def _ordered(comparison: Comparison) -> list[CellComparison]:
    return sorted(comparison.cells, key=lambda cell: _ORDER.index(cell.verdict))


def _record(cell: CellComparison) -> Record:
    record = cell.cand if cell.cand is not None else cell.base
    assert record is not None
    return record


def short_labels(cells: list[CellComparison]) -> list[str]:
    """Each cell as `model | variant` by the suite's one label shortener (`labels.short_label`, as the summary and
    history name it), and ` | place` when the cells are not all at one place (the table's heading names it then).

    The Markdown keeps the whole label, every parameter and the place.
    """
    places = {_record(cell).place for cell in cells}
    labels = []
    for cell in cells:
        record = _record(cell)
        place = f" | {short_place(record)}" if len(places) > 1 else ""
        labels.append(f"{record.model} | {short_label(record)}{place}")
    return labels


def _row(cell: CellComparison, label: str) -> list[str]:
    changes = cell.metrics
    latency = changes["latency"].shown if "latency" in changes else ""
    speedup = changes["speedup"].shown.replace(" -> ", "->") if "speedup" in changes else ""
    top1 = ""
    if "accuracy" in changes and changes["accuracy"].value is not None:
        delta = changes["accuracy"].value
        top1 = f"{delta:+.2f}" if delta else "="
    size = changes["size"].shown if "size" in changes else ""
    return [label, cell.verdict, latency, speedup, top1, size, cell.why]


def summary(comparison: Comparison) -> str:
    """Cells per verdict, then which runs were compared: two lines, as run ids and commits fill one."""
    counts = ", ".join(f"{n} {verdict}" for verdict, n in comparison.counts().items() if n)
    return (
        f"{len(comparison.cells)} cells: {counts}\nBASE {comparison.base.description}"
        f" vs CAND {comparison.cand.description}"
    )


def headline(comparison: Comparison) -> str:
    """FAIL with the regressed cells' count and metrics; else INCONCLUSIVE when too many cells could not be judged
    (`Comparison.undecided`); else PASS, naming what `--fail-on` judged."""
    fail_on = comparison.rules.fail_on
    regressions = comparison.regressions()
    judged = ", ".join(fail_on) if fail_on else "nothing"
    if not regressions:
        return comparison.undecided or f"PASS: no regression in {judged}"
    metrics = sorted({m for cell in regressions for m in cell.regressed & set(fail_on)}, key=fail_on.index)
    return f"FAIL: {len(regressions)} cell(s) regressed in {', '.join(metrics)} (judged: {judged})"


def _skipped_both(cells: list[CellComparison]) -> int:
    return sum(1 for cell in cells if cell.base is not None and cell.base.status == "skipped")


def terminal(comparison: Comparison, show_all: bool) -> str:
    """The table (changed cells, or every cell with `show_all`), the count of unchanged ones, and the summary."""
    cells = _ordered(comparison)
    shown = cells if show_all else [cell for cell in cells if cell.verdict != "unchanged"]
    quiet = [cell for cell in cells if cell.verdict == "unchanged"]
    lines = []
    if shown:
        rows = [_row(cell, label) for cell, label in zip(shown, short_labels(shown), strict=True)]
        places = {_record(cell).place for cell in shown}
        if len(places) == 1:
            lines.append(f"every cell below at {places.pop()}")
        lines.append(tabulate(rows, _HEADERS, maxcolwidths=_WIDTHS, maxheadercolwidths=_WIDTHS, disable_numparse=True))
    if quiet and not show_all:
        skipped = _skipped_both(quiet)
        also = f" ({skipped} skipped on both sides: not a regression)" if skipped else ""
        lines.append(f"{len(quiet)} unchanged cells{also} not shown (--all shows them)")
    if comparison.scatter_note:
        lines.append(f"note: {comparison.scatter_note}")
    lines += [summary(comparison), headline(comparison)]
    return "\n".join(lines) + "\n"


def _markdown_table(cells: list[CellComparison]) -> str:
    rows = [[text.replace("|", "\\|") for text in _row(cell, cell.label)] for cell in cells]
    return tabulate(rows, _HEADERS, tablefmt="github", disable_numparse=True)


def markdown(comparison: Comparison) -> str:
    """The comparison as GitHub-flavoured Markdown: a pass/fail headline, changed cells, every cell folded."""
    cells = _ordered(comparison)
    changed = [cell for cell in cells if cell.verdict != "unchanged"]
    undecided = comparison.undecided
    mark = ":x:" if comparison.failed else ":warning:" if undecided else ":white_check_mark:"
    parts = [f"## {mark} Benchmark comparison: {headline(comparison)}", "", summary(comparison), ""]
    if comparison.machine_note:
        parts += [f"> **Warning:** {comparison.machine_note}.", ""]
    if comparison.scatter_note:
        parts += [f"> **Note:** {comparison.scatter_note}.", ""]
    if changed:
        parts += ["### Changed cells", "", _markdown_table(changed), ""]
    else:
        parts += [f"No cell changed beyond the noise (threshold {comparison.rules.limit('latency'):.0%}).", ""]
    counted = ", ".join(f"{n} {verdict}" for verdict, n in comparison.counts().items() if n and verdict in VERDICTS)
    parts += [
        f"<details><summary>All {len(cells)} cells ({counted})</summary>",
        "",
        _markdown_table(cells),
        "",
        "</details>",
        "",
    ]
    return "\n".join(parts)
