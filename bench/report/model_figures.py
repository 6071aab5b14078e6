"""The figures of one model's cells, as Markdown with captions: the headline figure (speedup against sparsity)
and the rest (latency per variant, Pareto fronts, theory against measurement, bit-widths).

Figures that compare places draw one panel per place on shared axes, in one file per model, so a reader sees
every target and engine of a model side by side; file names are slugs of the model (and place), stable from run
to run so links into a report keep working.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from bench.analysis.series import Point, accuracy_points, headline_series, speedup_series
from bench.figures.panels import plot_latency_panels, plot_pareto_panels, plot_speedup_panels
from bench.figures.plots import plot_bits, plot_theory_vs_measured
from bench.labels import presentation, short_place
from bench.records import ModelRecord
from bench.report.captions import measured_how
from bench.report.markdown import figure_markdown, slug

__all__ = ["headline_figures", "model_figures"]

_COSTS = (("latency", "median latency (ms, log)", 1e3), ("size", "smallest real encoding (kB, log)", 1e-3))
"""Pareto costs: name, axis label and the factor from the records' unit (seconds, bytes) to the axis's."""


def _places(records: list[ModelRecord]) -> dict[str, str]:
    """place -> its short name (`labels.short_place`), in the order the records came."""
    return {r.place: short_place(r) for r in records}


def headline_figures(records: list[ModelRecord], directory: Path | None) -> list[str]:
    """Measured speedup against the fraction of MACs removed, one figure per model with a panel per place: the
    figure the finding is about."""
    md: list[str] = []
    by_model: dict[str, dict[str, dict[str, list[Point]]]] = {}
    for (model, place), series in speedup_series(records).items():
        by_model.setdefault(model, {})[place] = series
    for model, places in by_model.items():
        names = _places([r for r in records if r.model == model])
        panels = [(names[place], series) for place, series in places.items()]
        drawn = [
            r for r in records
            if r.model == model and r.place in places and r.timing and r.macs and headline_series(r) is not None
        ]  # fmt: skip
        caption = (
            "Measured speedup (median, 95% CI) against the fraction of MACs removed, for unstructured pruning on"
            " dense and CSR kernels and for channel pruning, one panel per place (target, engine, threads, batch)"
            f" on shared axes; the dashed line is the MACs' promise, the solid one no speedup. {measured_how(drawn)}"
        )
        md += figure_markdown(
            directory, f"speedup-{slug(model)}.png", f"{model} speedup vs sparsity", caption,
            partial(plot_speedup_panels, panels, f"{model}: speedup vs MACs removed"),
        )  # fmt: skip
    return md


def model_figures(records: list[ModelRecord], directory: Path | None) -> list[str]:
    """Figures of one model's cells: latency per variant and the accuracy-latency and accuracy-bytes Pareto fronts
    (one panel per place), then theory vs measurement and bit-widths per place."""
    md: list[str] = []
    for model in dict.fromkeys(r.model for r in records):
        mine = [r for r in records if r.model == model]
        md += _model_panels(model, mine, directory)
        md += _place_figures(model, [r for r in mine if r.ok], directory)
    return md


def _model_panels(model: str, records: list[ModelRecord], directory: Path | None) -> list[str]:
    md: list[str] = []
    names = _places(records)
    timed = [r for r in records if r.ok and r.timing is not None]
    if timed:
        panels = [(names[place], [r for r in records if r.place == place]) for place in names]
        md += figure_markdown(
            directory, f"latency-{slug(model)}.png", f"{model} latency per variant",
            "Median latency of every variant, one panel per place on a shared axis, bars coloured by compressor"
            " family; whiskers are a distribution-free 95% CI of the median (order statistics) from the cell's raw"
            f" samples, the dashed line and grey band the baseline's median and CI. {measured_how(timed)}",
            partial(plot_latency_panels, panels, f"{model}: median latency per variant"),
        )  # fmt: skip
    ok = [r for r in records if r.ok]
    for cost, label, scale in _COSTS:
        points = {
            place: [p._replace(cost=scale * p.cost) for p in found]
            for (_, place), found in accuracy_points(ok, cost).items()
            if len(found) > 1
        }
        if not points:
            continue
        drawn = [r for r in ok if r.place in points and r.timing and r.accuracy and r.accuracy.top1 is not None]
        md += figure_markdown(
            directory, f"pareto-{cost}-{slug(model)}.png", f"{model} top-1 vs {cost}",
            f"Top-1 on the held-out set against {label}, one panel per place on shared axes, points in their"
            " family's colour and marker; the staircase joins the Pareto front (no variant is both cheaper and more"
            f" accurate) and names its points. {measured_how(drawn)}",
            partial(plot_pareto_panels, [(names[p], found) for p, found in points.items()], label,
                    f"{model}: top-1 vs {cost}"),
        )  # fmt: skip
    return md


def _place_figures(model: str, ok: list[ModelRecord], directory: Path | None) -> list[str]:
    md: list[str] = []
    for place, name in _places(ok).items():
        here = [r for r in ok if r.place == place]
        stem, title = f"{slug(model)}-{slug(place)}", f"{model}, {name}"
        compressed = [r for r in here if r.compressor != "none"]
        if compressed:
            md += figure_markdown(
                directory, f"theory-{stem}.png", f"{model} theoretical vs measured",
                "Theoretical speedup (dense over effective MACs, grey) beside the measured median (in the family's"
                f" colour), per variant. {measured_how(compressed)}",
                partial(plot_theory_vs_measured, compressed, f"{title}: theoretical vs measured speedup"),
            )  # fmt: skip
        quantized = [
            r for r in here if presentation(r.compressor).bit_codes and r.sizes and r.sizes.packed_bytes is not None
        ]
        if quantized:
            md += figure_markdown(
                directory, f"bits-{stem}.png", f"{model} bit-width",
                "Bytes (bit-packed or Huffman-coded) and top-1 against bits per weight, per quantizer."
                f" {measured_how(quantized)}",
                partial(plot_bits, quantized, f"{title}: bytes and top-1 vs bits per weight"),
            )  # fmt: skip
    return md
