"""The terminal summary of a run: per model, the figures that matter for each variant in a table that fits a screen.

A row says what the variant is (`labels.short_label`), how it ran, its smallest real encoding, top-1, the
theoretical speedup and, per place, the measured speedup with its interval and flags. Everything else (every
encoding, MACs, latencies, efficiency, how training went) is in the wide table, the Markdown and the HTML report.
Places that do not fit beside each other go into a second table with the same rows, so no line is wider than
`labels.SCREEN_WIDTH`.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from collections.abc import Callable, Sequence

from bench.labels import SCREEN_WIDTH, short_executed, short_label, short_place, variant_key
from bench.records import FLAGS, ModelRecord

__all__ = [
    "FLAG_LETTERS", "summary_tables", "fit_table", "human_bytes", "wrapped", "speedup_cell", "top1_text",
]  # fmt: skip

FLAG_LETTERS = {flag: flag[0].upper() for flag in FLAGS}
"""busy -> B, noisy -> N, throttled -> T: a timing's flags as the summary's speedup cells show them."""

_LEGEND = {
    "busy": "B busy (other processes used the CPU)",
    "noisy": "N noisy (IQR above 10% of the median)",
    "throttled": "T throttled",
}
_GAP = 2
"""Spaces between columns of tabulate's `simple` format."""


def speedup_cell(record: ModelRecord) -> str:
    """ "3.94x [3.85, 4.01] N": the median speedup, its 95% CI and flag letters; the status when it did not run."""
    timing = record.timing
    if timing is None:
        return record.status
    text = f"{timing.speedup_median:.2f}x"
    if timing.speedup_ci_low is not None and timing.speedup_ci_high is not None:
        text += f" [{timing.speedup_ci_low:.2f}, {timing.speedup_ci_high:.2f}]"
    letters = "".join(FLAG_LETTERS[flag] for flag in record.flags)
    return f"{text} {letters}" if letters else text


def top1_text(record: ModelRecord) -> str:
    """Top-1 in percent without the sign (the column says it), "n/a" without a real accuracy."""
    accuracy = record.accuracy
    return f"{100 * accuracy.top1:.2f}" if accuracy is not None and accuracy.top1 is not None else "n/a"


def human_bytes(count: int) -> tuple[str, str]:
    """Bytes as three significant digits and a decimal unit: (`43.3`, `MB`), (`909`, `kB`), (`512`, `B`)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.3g}", unit
    return str(count), "B"


def _bytes_text(group: Sequence[ModelRecord]) -> str:
    """ "435/432 kB stored": the smallest encoding per place, the unit and encoding said once where shared."""
    smallest = [r.sizes.smallest() for r in group if r.ok and r.sizes is not None]
    if not smallest:
        return "-"
    shown = [human_bytes(count) for _, count in smallest]
    units = {unit for _, unit in shown}
    if len(units) == 1:
        numbers = "/".join(dict.fromkeys(number for number, _ in shown)) + f" {units.pop()}"
    else:
        numbers = "/".join(dict.fromkeys(f"{number} {unit}" for number, unit in shown))
    return f"{numbers} {'/'.join(dict.fromkeys(encoding for encoding, _ in smallest))}"


def _joined(group: Sequence[ModelRecord], text: Callable[[ModelRecord], str]) -> str:
    """One value when every place agrees, else each place's in column order joined by `/` (int8 packs and is
    evaluated per engine)."""
    said = list(dict.fromkeys(text(r) for r in group if r.ok)) or ["-"]
    return "/".join(said)


def _rows(records: Sequence[ModelRecord]) -> dict[str, list[ModelRecord]]:
    """Short label -> the variant's records; a label shared by two variants (cut to the same text) keeps both rows
    apart by numbering the second."""
    rows: dict[str, list[ModelRecord]] = defaultdict(list)
    owner: dict[str, str] = {}
    for record in records:
        label = short_label(record)
        key = repr(variant_key(record))
        shown, number = label, 2
        while owner.setdefault(shown, key) != key:
            shown, number = f"{label} #{number}", number + 1
        rows[shown].append(record)
    return rows


def fit_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int]) -> list[str]:
    """tabulate's `simple` layout without its padding around headers, which would cost a place column: headers
    of one or two lines (`\n`), a dashed rule, columns two spaces apart, the `right` ones right-aligned."""
    split = [header.split("\n") for header in headers]
    depth = max(len(lines) for lines in split)
    split = [[""] * (depth - len(lines)) + lines for lines in split]
    widths = [max(len(line) for line in lines) for lines in split]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        shown = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return (" " * _GAP).join(shown).rstrip()

    return [line([lines[level] for lines in split]) for level in range(depth)] + [
        line(["-" * w for w in widths]),
        *(line(row) for row in rows),
    ]


def summary_tables(records: Sequence[ModelRecord], width: int = SCREEN_WIDTH) -> list[str]:
    """The summary of one model's records: its name, the table(s), and a legend of what the cells abbreviate.

    Place columns are added to a table while it fits `width`; the next place starts another table with the same
    rows, so two engines of the default run sit side by side and a matrix of many places still fits.
    """
    places = list(dict.fromkeys(r.place for r in records))
    short = {r.place: short_place(r) for r in records}
    lead_headers = ["compressor", "executed as", "smallest\nencoding", "top-1\n%", "theor.\nspeedup"]
    lead_rows, place_rows = [], []
    for label, group in _rows(records).items():
        first = next((r for r in group if r.ok), group[0])
        theory = f"{first.macs.theoretical_speedup:.1f}x" if first.macs is not None else "-"
        lead_rows.append([label, _joined(group, short_executed), _bytes_text(group),
                          _joined(group, top1_text), theory])  # fmt: skip
        at = {r.place: r for r in group}
        place_rows.append([speedup_cell(at[p]) if p in at else "" for p in places])
    right = (2, 3, 4)
    lines = [records[0].model] if records else []
    chunk: list[int] = []
    for index in [*range(len(places)), None]:
        if index is not None:
            wider = _columns(lead_headers, lead_rows, place_rows, places, short, [*chunk, index], right)
            if not chunk or max(len(line) for line in wider) <= width:
                chunk.append(index)
                continue
        lines += _columns(lead_headers, lead_rows, place_rows, places, short, chunk, right)
        chunk = [index] if index is not None else []
    lines += _not_run(records, width)
    flags = [flag for flag in FLAGS if any(flag in r.flags for r in records)]
    legend = "Speedup: baseline / compressed time, interleaved in one worker; a/b: per place, in column order."
    if flags:
        legend += " Flags: " + "; ".join(_LEGEND[flag] for flag in flags) + "."
    return lines + wrapped(legend + " The wide table: --wide; every figure: report.md, report.html.", width)


def _columns(
    lead_headers: list[str], lead_rows: list[list[str]], place_rows: list[list[str]], places: list[str],
    short: dict[str, str], chunk: list[int], right: Sequence[int],
) -> list[str]:  # fmt: skip
    headers = lead_headers + [f"{short[places[i]]}\nspeedup [95% CI]" for i in chunk]
    rows = [lead + [row[i] for i in chunk] for lead, row in zip(lead_rows, place_rows, strict=True)]
    return fit_table(headers, rows, right)


def _not_run(records: Sequence[ModelRecord], width: int) -> list[str]:
    """Why each cell without a timing did not run, once per reason and place: `skipped on cpu ort t1 b1 (unstr 50%
    csr layer, unstr 70% csr layer): ...cannot be exported to ONNX`."""
    reasons: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for record in records:
        if not record.ok:
            reason = record.error or "no reason stored"
            reasons[(record.status, short_place(record), reason)].append(short_label(record))
    said = (f"{status} on {place} ({', '.join(labels)}): {error}" for (status, place, error), labels in reasons.items())
    return [line for text in said for line in wrapped(text, width)]


def wrapped(text: str, width: int = SCREEN_WIDTH) -> list[str]:
    """A paragraph as lines of at most `width` columns (words are never split)."""
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]
