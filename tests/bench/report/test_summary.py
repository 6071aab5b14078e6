"""The terminal summary: every variant and place of a run in tables no wider than the screen it is laid out for."""

from __future__ import annotations

import dataclasses
import io
from collections import defaultdict
from pathlib import Path

import pytest

from bench.compare.sources import from_export
from bench.labels import SCREEN_WIDTH, short_label, short_place
from bench.records import ModelRecord, Sizes
from bench.report.summary import human_bytes, summary_tables
from bench.report.write import write_report
from tests.bench.record_factory import model_record, timing

REFERENCE = Path(__file__).parents[3] / "results" / "reference" / "x86_64-amd-epyc-2cpu-t1"


def _by_model(path: Path) -> dict[str, list[ModelRecord]]:
    out: dict[str, list[ModelRecord]] = defaultdict(list)
    for record in from_export(path, "reference").records:
        if isinstance(record, ModelRecord):
            out[record.model].append(record)
    return out


@pytest.mark.parametrize("path", sorted(REFERENCE.glob("**/records.json")), ids=lambda p: p.parent.name)
def test_summary_of_every_reference_run_fits_and_names_every_variant_and_place(path: Path) -> None:
    for model, records in _by_model(path).items():
        lines = summary_tables(records)
        assert max(len(line) for line in lines) <= SCREEN_WIDTH
        text = "\n".join(lines)
        first_cells = {line.split("  ")[0] for line in lines}
        assert {short_label(r) for r in records} <= first_cells, f"{model}: a variant has no row"
        for record in records:
            assert short_place(record) in text


def test_whole_terminal_report_of_the_default_run_fits_120_columns(tmp_path: Path) -> None:
    side = from_export(REFERENCE / "records.json", "reference")
    out = io.StringIO()
    write_report(side.run, list(side.records), None, out)
    assert max(len(line) for line in out.getvalue().splitlines()) <= SCREEN_WIDTH
    wide = io.StringIO()
    write_report(side.run, list(side.records), None, wide, wide=True)
    assert (
        "non-zero / params" in wide.getvalue()
        and max(len(line) for line in wide.getvalue().splitlines()) > SCREEN_WIDTH
    )


def test_places_that_do_not_fit_side_by_side_go_into_another_table_with_the_same_rows() -> None:
    records = [
        model_record(compressor, params, engine=engine, threads=threads, speedup=2.0)
        for compressor, params in (("none", {}), ("prune.channel", {"macs_removed": 0.5}))
        for engine in ("torchscript", "onnxruntime") for threads in (1, 2, 4)
    ]  # fmt: skip
    lines = summary_tables(records, width=SCREEN_WIDTH)
    assert max(len(line) for line in lines) <= SCREEN_WIDTH
    rules = [line for line in lines if set(line) <= {"-", " "} and line]
    assert len(rules) >= 2, "six places cannot share one 120-column table"
    for place in {short_place(r) for r in records}:
        assert sum(place in line for line in lines) == 1
    assert sum(line.startswith("channel 50%") for line in lines) == len(rules)


def test_flags_show_as_letters_with_their_legend_and_failed_cells_as_their_status() -> None:
    busy = model_record("none", speedup=1.0)
    busy = dataclasses.replace(busy, timing=timing(1.0, 0.9, 1.1, busy=True, noisy=True))
    failed = model_record("prune.channel", {"macs_removed": 0.5}, status="failed")
    lines = summary_tables([busy, failed])
    row = next(line for line in lines if line.startswith("none"))
    assert row.endswith("1.00x [0.90, 1.10] BN")
    assert next(line for line in lines if line.startswith("channel 50%")).endswith("failed")
    legend = " ".join(lines)
    assert "B busy" in legend and "N noisy" in legend and "T throttled" not in legend


def test_bytes_read_in_their_own_unit_and_per_place_values_share_it() -> None:
    assert human_bytes(43_300_000) == ("43.3", "MB") and human_bytes(909_000) == ("909", "kB")
    assert human_bytes(512) == ("512", "B") and human_bytes(2_000_000_000) == ("2", "GB")
    sizes = [Sizes(params_total=1, params_nonzero=1, dense_bytes=10**6, csr_bytes=10**6, gzip_bytes=10**6,
                   stored_bytes=stored) for stored in (435_000, 432_000)]  # fmt: skip
    records = [model_record("quant.int8", {}, sizes=sizes[0]),
               model_record("quant.int8", {}, sizes=sizes[1], engine="onnxruntime")]  # fmt: skip
    row = next(line for line in summary_tables(records) if line.startswith("int8"))
    assert "435/432 kB stored" in row
