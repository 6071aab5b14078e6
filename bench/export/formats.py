"""A stored run as JSON (every record whole, raw samples included), CSV (one row of scalars per record) or
pytest-benchmark's JSON (one benchmark per timed cell, see `bench.export.pytest_benchmark`)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sys
from typing import Any

from bench.errors import BenchError
from bench.export.pytest_benchmark import pytest_benchmark_json
from bench.records import ModelRecord, Record, record_json
from bench.store.database import Run

__all__ = ["FORMATS", "export_run"]

FORMATS = ("csv", "json", "pytest-benchmark")


def export_run(run: Run, records: list[Record], fmt: str) -> str:
    """The run's records in `fmt`: "json" (complete, the store's own JSON), "csv" (scalars only) or
    "pytest-benchmark" (the timed cells, as `pytest --benchmark-json` writes benchmarks).

    CSV columns name nested parts with dots (`timing.speedup_median`, `sizes.dense_bytes`, `machine.arch`) and
    add the derived figures a spreadsheet would otherwise recompute; lists (raw samples, GEMMs) stay in JSON.

    Raises:
        BenchError: an unknown format, or a pytest-benchmark export of a run without one timed cell (the
            file would compare as "no change" against anything).
    """
    if fmt == "json":
        return json.dumps({"run": dataclasses.asdict(run), "records": [record_json(r) for r in records]}, indent=2)
    if fmt == "pytest-benchmark":
        return _pytest_benchmark(run, records)
    if fmt != "csv":
        raise BenchError(f"--format must be one of {', '.join(FORMATS)}; got '{fmt}'")
    rows = [_row(record) for record in records]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _pytest_benchmark(run: Run, records: list[Record]) -> str:
    document, untimed = pytest_benchmark_json(run, records)
    if not document["benchmarks"]:
        raise BenchError(
            f"run {run.run_id} has no ok cell with a timing to export as pytest-benchmark"
            f" ({len(records)} cells: failed, skipped or layer sweeps); export it as json or csv"
        )
    if untimed:
        # Said on stderr, beside the file: the export is still complete for what can be a benchmark.
        print(
            f"note: {untimed} of {len(records)} cells left out of the pytest-benchmark export: failed, skipped or"
            " without raw samples (layer sweeps)",
            file=sys.stderr,
        )
    # As pytest-benchmark writes it; strict JSON, since JavaScript readers refuse Infinity and NaN.
    return json.dumps(document, indent=4, ensure_ascii=True, allow_nan=False) + "\n"


def _row(record: Record) -> dict[str, Any]:
    row = _flat(record_json(record))
    if isinstance(record, ModelRecord) and record.macs is not None:
        row["theoretical_speedup"] = record.macs.theoretical_speedup
        row["efficiency"] = record.efficiency
    return row


def _flat(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Scalars of a JSON object, nested objects' as `part.key`; lists are left out."""
    flat: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict):
            flat.update(_flat(item, f"{prefix}{key}."))
        elif not isinstance(item, list):
            flat[f"{prefix}{key}"] = item
    return flat
