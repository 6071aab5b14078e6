"""The report's layer sweeps: per model and place, every GEMM shape of the model timed dense and sparse at each
sparsity, the break-even sparsity of CSR, and a figure of the speedup against sparsity."""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from tabulate import tabulate

from bench.analysis.series import break_even, layer_series
from bench.figures.plots import plot_layers
from bench.records import LayersRecord, Record
from bench.report.captions import measured_how
from bench.report.markdown import figure_markdown, slug
from bench.report.sections.base import SectionText
from bench.report.summary import fit_table
from bench.report.tables import layer_table, pattern_layers

__all__ = ["LAYERS", "LayerSweeps", "layer_break_evens"]

_HEADERS = (
    "sparsity", "sparse kernel", "dense\nGEMMs ms", "sparse\nGEMMs ms", "speedup\n(all layers)",
    "shapes where\nsparse wins", "theor.\nspeedup",
)  # fmt: skip
"""`tables.layer_table`'s columns, in two lines each for the terminal."""


def layer_break_evens(records: Sequence[Record]) -> dict[tuple[str, str], tuple[str, float | None]]:
    """(model, place) -> the break-even sparsity of CSR, as a phrase and its value when bracketed; the finding
    quotes it too, so it is computed from the records alone."""
    return {
        key: break_even([(float(r.params["sparsity"]), r.speedup_median or 0.0) for r in group])
        for key, group in layer_series(records).items()
    }


class LayerSweeps:
    """The layer sweeps of a run: a run-level section (its records are the run's)."""

    name = "layers"

    def render(self, records: Sequence[Record], directory: Path | None) -> SectionText:
        """The tables (wide, and fitted to the summary's width) and the Markdown (tables and figures), per model
        and place; a place with only 2:4 pattern records has no CSR curve, hence no break-even and no figure."""
        layers = layer_series(records)
        break_evens = layer_break_evens(records)
        patterned = pattern_layers(list(records))
        text, short, md = io.StringIO(), io.StringIO(), []
        for model, place in dict.fromkeys([*layers, *patterned]):
            group: list[LayersRecord] = layers.get((model, place), [])
            headers, rows = layer_table(group + patterned.get((model, place), []))
            table = tabulate(rows, headers, tablefmt="simple")
            fitted = "\n".join(fit_table(_HEADERS, [[str(c) for c in row] for row in rows], right=(0, 2, 3)))
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
                "CSR against dense GEMM speedup per distinct GEMM shape of the model (thin lines) and time-weighted"
                f" over all of them (thick), against per-layer sparsity. {measured_how(group)}"
            )
            md += figure_markdown(
                directory, f"layers-{slug(model)}-{slug(place)}.png", f"{model} layer-level speedup", caption,
                partial(plot_layers, group, value, f"{model} layers, {place}: CSR vs dense GEMM"),
            )  # fmt: skip
        return SectionText(md, short.getvalue(), text.getvalue())


LAYERS = LayerSweeps()
"""The layer sweeps' entry in `bench.report.sections.RUN_SECTIONS`."""
