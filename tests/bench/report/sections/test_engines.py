"""The cross-engine part of the report from hand-made records: the table, the sentence, the figure, and runs on
one engine left as they were."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest

from bench.analysis.engines import engine_comparisons, engine_finding
from bench.records import ModelRecord
from bench.report.sections.engines import engine_table
from bench.report.write import model_table, write_report
from bench.store.database import Run
from tests.bench.record_factory import model_record, timing

ORT = "onnxruntime"
NO_CSR = "onnxruntime runs no CSR sparse modules: the cell needs the torchscript engine"
CHANNEL = ("prune.channel", {"macs_removed": 0.5})
DENSE = ("prune.unstructured", {"sparsity": 0.5, "execution": "dense"})
CSR = ("prune.unstructured", {"sparsity": 0.9, "execution": "csr"})
RUN = Run("r1", "2026-01-01T00:00:00+00:00", None, "finished", {}, {}, {})


def _engine(engine: str, baseline_ms: float, latencies_ms: dict[str, float], **where: int) -> list[ModelRecord]:
    """The variants of one engine at one place, each with the given candidate latency against `baseline_ms`."""
    variants = {"none": ("none", {}), "channel": CHANNEL, "dense": DENSE, "csr": CSR}
    theoretical = {"none": 1.0, "channel": 2.0, "dense": 2.0, "csr": 10.0}
    records = []
    for key, (compressor, params) in variants.items():
        if key not in latencies_ms:
            records.append(model_record(compressor, params, engine=engine, status="skipped", error=NO_CSR, **where))
            continue
        ms, kept = latencies_ms[key], {"engine": engine, "theoretical": theoretical[key], **where}
        records.append(model_record(compressor, params, median_s=ms / 1e3, speedup=baseline_ms / ms, **kept))
    return records


def _torchscript(**where: int) -> list[ModelRecord]:
    return _engine("torchscript", 1.0, {"none": 1.0, "channel": 0.5, "dense": 1.0, "csr": 2.0}, **where)


def _onnxruntime(**where: int) -> list[ModelRecord]:
    """ORT runs the fp32 model in 0.6 ms, channel pruning in 0.25 ms, and skips the CSR cell."""
    return _engine(ORT, 0.6, {"none": 0.6, "channel": 0.25, "dense": 0.6}, **where)


@pytest.fixture
def records() -> list[ModelRecord]:
    return _torchscript() + _onnxruntime()


def test_engine_table_values_and_fastest_mark(records: list[ModelRecord]) -> None:
    (comparison,) = engine_comparisons(records).values()
    headers, rows, footnotes = engine_table(comparison)
    assert headers == ["compressor", "torchscript", "onnxruntime"]
    # fastest fp32 baseline: ORT's 0.6 ms; every speedup is 0.6 ms / the cell's latency
    assert rows == [
        ["fp32 baseline", "1.000 (0.60x)", "0.600 (1.00x)"],
        ["none", "1.000 (0.60x)", "0.600 (1.00x)"],
        ["channel 50%", "0.500 (1.20x)", "0.250 (2.40x) (fastest)"],
        ["unstr 50%", "1.000 (0.60x)", "0.600 (1.00x)"],
        ["unstr 90% csr", "2.000 (0.30x)", "skipped [1]"],
    ]
    assert footnotes == [f"[1] skipped: {NO_CSR}"]


def test_engine_finding_names_the_fastest_baseline_and_way(records: list[ModelRecord]) -> None:
    (comparison,) = engine_comparisons(records).values()
    assert engine_finding(comparison) == (
        "Across engines, m on cpu t=1 b=1: the fp32 baseline is fastest on onnxruntime (0.600 ms), 1.67x faster"
        " than on torchscript (1.000 ms); the fastest way to run m there is prune.channel macs_removed=0.5 on"
        " onnxruntime, 0.250 ms, a speedup of 2.40x over the fastest fp32 baseline."
    )


def test_engine_finding_within_noise_and_without_a_second_baseline() -> None:
    close = _torchscript() + _engine(ORT, 0.95, {"none": 0.95, "channel": 0.6})
    (comparison,) = engine_comparisons(close).values()
    text = engine_finding(comparison)
    assert "fastest on onnxruntime (0.950 ms), 1.05x faster than on torchscript (1.000 ms)" in text
    assert "within the 1.10x timing noise can produce" in text
    assert "the fastest way to run m there is prune.channel macs_removed=0.5 on torchscript, 0.500 ms" in text
    skipped = _torchscript() + _engine(ORT, 1.0, {})
    (comparison,) = engine_comparisons(skipped).values()
    assert "only torchscript has a measured fp32 baseline (1.000 ms; onnxruntime had no ok cell)" in engine_finding(
        comparison
    )
    _, rows, footnotes = engine_table(comparison)
    assert [row[2] for row in rows] == ["-", "skipped [1]", "skipped [1]", "skipped [1]", "skipped [1]"]
    assert footnotes == [f"[1] skipped: {NO_CSR}"]


def test_model_table_shows_the_skipped_engine_cell_with_its_reason(records: list[ModelRecord]) -> None:
    headers, rows = model_table(records, full=True)
    column = headers.index("speedup cpu onnxruntime t=1 b=1 [95% CI]")
    latency = headers.index("latency ms cpu onnxruntime t=1 b=1 (base -> this)")
    csr = next(row for row in rows if row[0] == "prune.unstructured execution=csr sparsity=0.9")
    assert csr[column] == f"skipped: {NO_CSR}" and csr[latency] == ""


def test_report_has_engine_tables_sentences_and_figure(tmp_path: Path) -> None:
    records = _torchscript() + _onnxruntime() + _torchscript(threads=2) + _onnxruntime(threads=2)
    records += _torchscript(batch=8)  # one engine only here: no engine table for b=8
    out = io.StringIO()
    path = write_report(RUN, list(records), tmp_path / "report", out, wide=True).md
    assert path is not None
    text, report = out.getvalue(), path.read_text()
    for where in ("cpu t=1 b=1", "cpu t=2 b=1"):
        assert f"\nfastest way to run m on {where}\n" in text
        assert f"### fastest way to run m on {where}" in report
        assert f"Across engines, m on {where}: the fp32 baseline is fastest on onnxruntime" in report
    assert "fastest way to run m on cpu t=1 b=8" not in text and "Across engines, m on cpu t=1 b=8" not in report
    assert "| channel 50% " in report and "0.250 (2.40x) (fastest)" in report
    assert f"[1] skipped: {NO_CSR}" in text and f"[1] skipped: {NO_CSR}" in report
    # the per-place finding splits by engine and does not judge CSR kernels where none ran
    assert "Finding reproduced for m on cpu onnxruntime t=1 b=1:" in report
    assert "cpu onnxruntime t=1 b=1" in report and "No CSR-kernel cell ran here." in report
    assert "Finding reproduced for m on cpu t=1 b=1:" in report and "CSR kernels never beat" in report
    figure = path.parent / "engines-m.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![m median latency by compressor and engine (cpu t=1 b=1: torchscript, onnxruntime;" in report
    assert "(engines-m.png)" in report and "interquartile range" in report
    printed = [part.split("\n\n")[0] for part in text.split("\nfastest way to run m on ")[1:]]
    written = [part.split("![")[0] for part in report.split("### fastest way to run m on ")[1:]]
    # table lines only: the legend and the footnotes are prose that wraps
    tables = [[line for line in block.splitlines()[1:] if line and line[0] not in "[E"] for block in printed]
    tables += [[line for line in block.splitlines() if line.startswith("|")] for block in written]
    assert len(tables) == 4 and all(any("unstr 90% csr" in line for line in table) for table in tables)
    assert max(len(line) for table in tables for line in table) <= 120


def test_one_engine_run_has_no_engine_part(tmp_path: Path) -> None:
    records = _torchscript() + _torchscript(threads=2)
    assert engine_comparisons(records) == {}
    out = io.StringIO()
    path = write_report(RUN, list(records), tmp_path / "report", out, wide=True).md
    assert path is not None
    report = path.read_text()
    assert "fastest way" not in out.getvalue() + report and "Across engines" not in report
    assert not (path.parent / "engines-m.png").exists()
    assert "CSR kernels never beat dense kernels at the model level." in report


def test_engine_table_keeps_a_cells_flags(records: list[ModelRecord]) -> None:
    noisy = replace(records[1], timing=timing(2.0, median_s=0.5e-3, busy=True, noisy=True))
    (comparison,) = engine_comparisons([records[0], noisy, *records[2:]]).values()
    assert engine_table(comparison)[1][2][1] == "0.500 (1.20x, busy, noisy)"
