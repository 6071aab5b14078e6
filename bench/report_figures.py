"""The figures of one model's cells, as Markdown with captions: the headline figure (speedup against sparsity)
and the rest (theory against measurement, Pareto fronts, bit-widths)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from bench.analysis import accuracy_points, pareto_front, speedup_series
from bench.captions import measured_how
from bench.plots import (
    figure_markdown,
    plot_bits,
    plot_pareto,
    plot_speedup_vs_sparsity,
    plot_theory_vs_measured,
    slug,
)  # fmt: skip
from bench.records import ModelRecord

__all__ = ["headline_figures", "model_figures"]

_QUANTIZERS = ("quant.bits", "quant.binary", "quant.cluster")


def headline_figures(records: list[ModelRecord], directory: Path | None) -> list[str]:
    """Measured speedup against the fraction of MACs removed, per place: the figure the finding is about."""
    md: list[str] = []
    for (model, place), series in speedup_series(records).items():
        here = [r for r in records if r.place == place and r.ok]
        caption = (
            "Measured speedup (median, 95% CI) against the fraction of MACs removed, for unstructured pruning on"
            " dense and CSR kernels and for channel pruning; the dashed line is the MACs' promise."
            f" {measured_how(here)}"
        )
        md += figure_markdown(
            directory, f"speedup-{slug(model)}-{slug(place)}.png", f"{model} speedup vs sparsity", caption,
            partial(plot_speedup_vs_sparsity, series, f"{model}, {place}: speedup vs MACs removed"),
        )  # fmt: skip
    return md


def model_figures(records: list[ModelRecord], directory: Path | None) -> list[str]:
    """Figures of one model's cells, per target/threads/batch: theory vs measurement, Pareto fronts, bit-widths."""
    md: list[str] = []
    ok = [r for r in records if r.ok]
    for place in dict.fromkeys(r.place for r in ok):
        here = [r for r in ok if r.place == place]
        model, stem = here[0].model, f"{slug(here[0].model)}-{slug(place)}"
        compressed = [r for r in here if r.compressor != "none"]
        title = f"{model}, {place}"
        how = measured_how(here)
        if compressed:
            md += figure_markdown(
                directory, f"theory-{stem}.png", f"{model} theoretical vs measured",
                f"Theoretical speedup (dense over effective MACs) beside the measured median, per variant. {how}",
                partial(plot_theory_vs_measured, compressed, f"{title}: theoretical vs measured speedup"),
            )  # fmt: skip
        for cost, label in (("latency", "median latency (s)"), ("size", "smallest real encoding (bytes)")):
            points = accuracy_points(here, cost).get((model, place), [])
            if len(points) > 1:
                md += figure_markdown(
                    directory, f"pareto-{cost}-{stem}.png", f"{model} top-1 vs {cost}",
                    f"Top-1 on the held-out set against {label}; the line joins the Pareto front. {how}",
                    partial(plot_pareto, points, pareto_front(points), label, f"{title}: top-1 vs {cost}"),
                )  # fmt: skip
        quantized = [r for r in here if r.compressor in _QUANTIZERS and r.sizes and r.sizes.packed_bytes is not None]
        if quantized:
            md += figure_markdown(
                directory, f"bits-{stem}.png", f"{model} bit-width",
                f"Bytes (bit-packed or Huffman-coded) and top-1 against bits per weight, per quantizer. {how}",
                partial(plot_bits, quantized, f"{model}: bytes and top-1 vs bits per weight"),
            )  # fmt: skip
    return md
