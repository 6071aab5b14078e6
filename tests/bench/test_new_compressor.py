"""A compressor added in a module of its own reaches every view of the report with no edit in `bench/`: its label,
its family and colour, its legend place, its rows in the terminal summary and the Markdown model table."""

from __future__ import annotations

import importlib
import io
import sys
from pathlib import Path

import pytest
from matplotlib.colors import to_hex
from matplotlib.container import BarContainer

from bench.analysis.series import headline_series
from bench.figures.palette import family_handles, style
from bench.figures.panels import draw_latency_panels
from bench.labels import FAMILIES, families, family, family_rank, short_label, short_place
from bench.records import ModelRecord
from bench.report.summary import summary_tables
from bench.report.write import write_report
from bench.store.database import Run
from compressors import registry
from tests.bench.record_factory import model_record

MODULE = "tests.bench.fake_compressor"
RUN = Run("r1", "2026-01-01T00:00:00+00:00", None, "finished", {}, {}, {})


@pytest.fixture
def halve(monkeypatch: pytest.MonkeyPatch) -> str:
    """Imports the plugin into a copy of the registry, afresh, so it registers here and nowhere else."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    plugin = importlib.import_module(MODULE)
    assert plugin.NAME in registry.names()
    return str(plugin.FAMILY)


def _records() -> list[ModelRecord]:
    """A baseline, a built-in compressor and the plugin at two levels, all at one place."""
    return [
        model_record("none", top1=0.98),
        model_record("prune.channel", {"macs_removed": 0.5}, theoretical=2.0, speedup=1.8, top1=0.97),
        model_record("test.halve", {"times": 1}, speedup=1.0, top1=0.9),
        model_record("test.halve", {"times": 3}, speedup=1.0, top1=0.5),
    ]


def test_its_label_family_and_colour_come_from_its_own_declaration(halve: str) -> None:
    record = model_record("test.halve", {"times": 3})
    assert short_label(record) == "halve x3"
    assert short_label(model_record("test.halve", {"times": 1})) == "halve x1"
    assert family(record) == halve
    assert headline_series(record) is None
    assert families() == (*FAMILIES[:-1], halve, "other")
    assert family_rank(FAMILIES[-2]) < family_rank(halve) < family_rank("other")
    assert style(halve) != style("other")
    assert style(halve).color not in {style(known).color for known in FAMILIES}
    assert [h.get_label() for h in family_handles(["other", halve, "baseline"])] == ["baseline", halve, "other"]


def test_a_stage_of_a_chain_is_shown_by_its_own_presentation(halve: str) -> None:
    record = model_record("chain", {"stages": "prune.unstructured(sparsity=0.5)+test.halve(times=2)"})
    assert short_label(record) == "unstr 50%+halve x2"


def test_its_bars_take_its_colour_and_its_legend_place(halve: str) -> None:
    records = _records()
    fig = draw_latency_panels([(short_place(records[0]), records)], "m: latency")
    rows = [tick.get_text() for tick in fig.axes[0].get_yticklabels()]
    assert rows == ["none", "channel 50%", "halve x1", "halve x3"]
    colours = {to_hex(c.patches[0].get_facecolor()) for c in fig.axes[0].containers if isinstance(c, BarContainer)}
    assert style(halve).color.lower() in colours
    legend = [text.get_text() for legend in fig.legends for text in legend.get_texts()]
    assert legend.index("baseline") < legend.index("channel") < legend.index(halve)


def test_its_rows_are_in_the_terminal_summary_and_the_markdown_table(halve: str, tmp_path: Path) -> None:
    records = _records()
    lines = summary_tables(records)
    assert sum(line.startswith("halve x1 ") for line in lines) == 1
    assert sum(line.startswith("halve x3 ") for line in lines) == 1
    out = io.StringIO()
    files = write_report(RUN, list(records), tmp_path / "report", out, formats=("md",))
    assert any(line.startswith("halve x3 ") for line in out.getvalue().splitlines())
    assert files.md is not None
    markdown = files.md.read_text()
    assert "| test.halve times=1 " in markdown and "| test.halve times=3 " in markdown


def test_the_registry_is_left_as_it_was() -> None:
    assert "test.halve" not in registry.names()
    assert families() == FAMILIES
