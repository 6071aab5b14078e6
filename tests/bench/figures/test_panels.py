"""The report's figures: one panel per place on shared axes, every family in its one colour, fronts named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from bench.analysis.series import accuracy_points, pareto_front, speedup_series
from bench.compare.sources import from_export
from bench.figures.palette import family_handles, series_family, style
from bench.figures.panels import draw_latency_panels, draw_pareto_panels, draw_speedup_panels, latency_interval
from bench.labels import FAMILIES, family, short_label, short_place
from bench.records import ModelRecord
from bench.report.captions import measured_how
from bench.report.model_figures import headline_figures, model_figures
from targets.worker import median_ci
from tests.bench.record_factory import model_record, sampled_timing

REFERENCE = Path(__file__).parents[3] / "results" / "reference" / "x86_64-amd-epyc-2cpu-t1" / "records.json"
PNG = b"\x89PNG\r\n\x1a\n"
ENGINES = ("torchscript", "onnxruntime")


def _records(engine: str) -> list[ModelRecord]:
    """One model's cells at one place: a baseline, the three headline series at two levels, int8 and a skip."""
    base = 1e-3 if engine == "torchscript" else 6e-4
    cells: list[ModelRecord] = [model_record("none", engine=engine, top1=0.98, median_s=base)]
    for level, theoretical in ((0.5, 2.0), (0.9, 10.0)):
        for execution in ("dense", "csr"):
            cells.append(model_record("prune.unstructured", {"sparsity": level, "execution": execution},
                                      engine=engine, theoretical=theoretical, speedup=1.0, top1=0.97 - level / 10,
                                      median_s=base * (1.0 if execution == "dense" else 2.0)))  # fmt: skip
        cells.append(model_record("prune.channel", {"macs_removed": level}, engine=engine, theoretical=theoretical,
                                  speedup=theoretical / 2, top1=0.96 - level / 10,
                                  median_s=base * 2 / theoretical))  # fmt: skip
    samples = [base * (0.4 + 0.01 * i) for i in range(30)]
    cells.append(model_record("quant.int8", engine=engine, top1=0.975, timing=sampled_timing(samples)))
    cells.append(model_record("arch.dsconv", engine=engine, status="skipped", error="not on this engine"))
    return cells


@pytest.fixture(scope="module")
def records() -> list[ModelRecord]:
    return [r for engine in ENGINES for r in _records(engine)]


def _places(records: list[ModelRecord]) -> dict[str, str]:
    return {r.place: short_place(r) for r in records}


def _assert_panels_share_axes(fig: Figure, titles: list[str]) -> list[Axes]:
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == titles
    for other in axes[1:]:
        assert axes[0].get_shared_x_axes().joined(axes[0], other)
        assert axes[0].get_shared_y_axes().joined(axes[0], other)
    return axes


def test_every_family_has_one_fixed_style_and_the_baseline_is_black() -> None:
    styles = [style(name) for name in FAMILIES]
    assert len({s.color for s in styles}) == len(FAMILIES)
    assert len({s.marker for s in styles}) == len(FAMILIES)
    assert style("baseline").color == "#000000"
    assert style("channel") == style("channel")
    assert style("no such family") == style("other")
    assert [
        series_family(name) for name in ("unstructured, dense kernels", "unstructured, CSR kernels", "channel pruning")
    ] == ["unstructured", "unstructured CSR", "channel"]
    handles = family_handles(["channel", "baseline", "channel"])
    assert [h.get_label() for h in handles] == ["baseline", "channel"]


def test_speedup_panels_one_per_place_on_shared_axes(records: list[ModelRecord]) -> None:
    names = _places(records)
    panels = [(names[place], series) for (_, place), series in speedup_series(records).items()]
    fig = draw_speedup_panels(panels, "m: speedup")
    axes = _assert_panels_share_axes(fig, ["cpu ts t1 b1", "cpu ort t1 b1"])
    for ax in axes:
        colours = {to_hex(line.get_color()) for line in ax.get_lines()}
        assert {style(f).color.lower() for f in ("unstructured", "unstructured CSR", "channel")} <= colours


def test_latency_bars_share_rows_and_axis_and_whiskers_are_the_median_ci(records: list[ModelRecord]) -> None:
    panels = [(name, [r for r in records if r.place == place]) for place, name in _places(records).items()]
    fig = draw_latency_panels(panels, "m: latency")
    axes = _assert_panels_share_axes(fig, ["cpu ts t1 b1", "cpu ort t1 b1"])
    rows = [tick.get_text() for tick in axes[0].get_yticklabels()]
    assert rows[0] == "none" and "int8" in rows and "dsconv" in rows
    assert [family(r) for r in records[:1]] == ["baseline"]
    bars = [c for c in axes[0].containers if isinstance(c, BarContainer)]
    assert len(bars) == len(records) // 2 - 1  # every ok cell once, the skipped one not
    assert to_hex(bars[0].patches[0].get_facecolor()) == style("baseline").color
    assert "skipped" in [text.get_text() for text in axes[0].texts]
    int8 = next(r for r in records if r.compressor == "quant.int8")
    assert int8.timing is not None
    low, high = median_ci(int8.timing.samples_s)
    assert latency_interval(int8) == (int8.timing.median_s, low, high)
    assert low < int8.timing.median_s < high


def test_pareto_panels_label_the_front_with_short_labels(records: list[ModelRecord]) -> None:
    points = accuracy_points(records, "latency")
    names = _places(records)
    panels = [(names[place], found) for (_, place), found in points.items()]
    fig = draw_pareto_panels(panels, "median latency (s)", "m: top-1 vs latency")
    axes = _assert_panels_share_axes(fig, ["cpu ts t1 b1", "cpu ort t1 b1"])
    for ax, (_, found) in zip(axes, panels, strict=True):
        front = pareto_front(found)
        assert len(front) < len(found)
        assert sorted(text.get_text() for text in ax.texts) == sorted(p.label for p in front)
        boxes = [text.get_window_extent() for text in ax.texts]
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    labels = {short_label(r) for r in records}
    assert {p.label for _, found in panels for p in found} <= labels


def test_a_family_has_the_same_colour_in_different_figures(records: list[ModelRecord]) -> None:
    names = _places(records)
    channel = style("channel").color.lower()
    place = records[0].place
    speedup = draw_speedup_panels([(names[place], speedup_series(records)[("m", place)])], "s")
    series = next(c for c in speedup.axes[0].containers if c.get_label() == "channel pruning")
    line = series.lines[0]
    latency = draw_latency_panels([(names[place], [r for r in records if r.place == place])], "l")
    rows = [tick.get_text() for tick in latency.axes[0].get_yticklabels()]
    bar = next(c for c in latency.axes[0].containers if isinstance(c, BarContainer) and
               round(c.patches[0].get_y() + c.patches[0].get_height() / 2) == rows.index("channel 50%"))  # fmt: skip
    pareto = draw_pareto_panels([(names[place], accuracy_points(records, "latency")[("m", place)])], "x", "p")
    colours = {to_hex(c) for collection in pareto.axes[0].collections for c in collection.get_facecolors()}
    assert to_hex(line.get_color()) == to_hex(bar.patches[0].get_facecolor()) == channel
    assert channel in colours


def test_report_figures_draw_one_file_per_model_with_captions(records: list[ModelRecord], tmp_path: Path) -> None:
    md = headline_figures(records, tmp_path) + model_figures(records, tmp_path)
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", "\n".join(md))
    assert links[:4] == ["speedup-m.png", "latency-m.png", "pareto-latency-m.png", "pareto-size-m.png"]
    assert {"theory-m-cpu-t-1-b-1.png", "theory-m-cpu-onnxruntime-t-1-b-1.png"} <= set(links)
    for link in links:
        assert (tmp_path / link).read_bytes()[:8] == PNG
    captions = [line for line in md if line.startswith("*")]
    assert len(captions) == len(links)
    assert captions[1].endswith(f"{measured_how([r for r in records if r.ok])}*")
    assert headline_figures(records, None) == [] and model_figures(records, None) == []


def test_no_accuracy_no_pareto_figure(tmp_path: Path) -> None:
    unmeasured = [model_record("none"), model_record("prune.channel", {"macs_removed": 0.5}, theoretical=2.0)]
    links = re.findall(r"\(([^)]+\.png)\)", "\n".join(model_figures(unmeasured, tmp_path)))
    assert links == ["latency-m.png", "theory-m-cpu-t-1-b-1.png"]


@pytest.mark.skipif(not REFERENCE.is_file(), reason="reference records not in this checkout")
def test_reference_records_give_every_figure(tmp_path: Path) -> None:
    side = from_export(REFERENCE, "reference")
    mnist = [r for r in side.records if isinstance(r, ModelRecord) and r.model == "mnist_cnn"]
    md = headline_figures(mnist, tmp_path) + model_figures(mnist, tmp_path)
    links = re.findall(r"\(([^)]+\.png)\)", "\n".join(md))
    expected = {"speedup-mnist-cnn.png", "latency-mnist-cnn.png", "pareto-latency-mnist-cnn.png",
                "pareto-size-mnist-cnn.png"}  # fmt: skip
    assert expected <= set(links)
    assert all((tmp_path / link).read_bytes()[:8] == PNG for link in links)
