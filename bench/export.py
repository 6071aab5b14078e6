"""A stored run as JSON (every record whole, raw samples included) or CSV (one row of scalars per record)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from typing import Any

from bench.errors import BenchError
from bench.records import ModelRecord, Record, record_json
from bench.store import Run

__all__ = ["FORMATS", "export_run"]

FORMATS = ("csv", "json")


def export_run(run: Run, records: list[Record], fmt: str) -> str:
    """The run's records in `fmt`: "json" (complete, the store's own JSON) or "csv" (scalars only).

    CSV columns name nested parts with dots (`timing.speedup_median`, `sizes.dense_bytes`, `machine.arch`) and
    add the derived figures a spreadsheet would otherwise recompute; lists (raw samples, GEMMs) stay in JSON.
    """
    if fmt == "json":
        return json.dumps({"run": dataclasses.asdict(run), "records": [record_json(r) for r in records]}, indent=2)
    if fmt != "csv":
        raise BenchError(f"--format must be one of {', '.join(FORMATS)}; got '{fmt}'")
    rows = [_row(record) for record in records]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


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
