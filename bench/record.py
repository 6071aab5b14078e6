"""The record: one flat, versioned, JSON-native dict per measured cell.

Units are SI and live in the key (`latency_median_s`, `size_dense_bytes`); numbers are formatted only when shown.
`status` is "ok", "failed" (with `error`) or "skipped" (with `error` saying why), kept apart as asv does.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bench.errors import BenchError

__all__ = ["SCHEMA_VERSION", "STATUSES", "base_record", "check_record", "machine_id"]

SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "skipped")
_REQUIRED = ("schema_version", "cell_id", "kind", "model", "compressor", "params", "target", "threads", "batch", "status", "machine_id")
# What identifies a machine for latency: results from another CPU or torch build must not be reused or compared.
_MACHINE_KEYS = ("arch", "cpu_model", "cpu_count", "memory_bytes", "hostname", "torch", "cuda_device")


def machine_id(machine: dict[str, Any]) -> str:
    """A digest of the machine facts that change latency."""
    facts = {key: machine.get(key) for key in _MACHINE_KEYS}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def base_record(cell_json: dict[str, Any], cell_id: str, machine: dict[str, Any]) -> dict[str, Any]:
    """The fields every record has, before any measurement; status starts as "ok"."""
    return {
        "schema_version": SCHEMA_VERSION,
        "cell_id": cell_id,
        **cell_json,
        "status": "ok",
        "error": None,
        "machine_id": machine_id(machine),
        "machine": machine,
    }


def check_record(record: dict[str, Any]) -> dict[str, Any]:
    """Return `record` if this version of the suite can read it.

    Raises:
        BenchError: a record of another schema version, or one missing required fields.
    """
    version = record.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BenchError(f"record {record.get('cell_id', '?')} has schema version {version}; this suite reads version {SCHEMA_VERSION}")
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
        raise BenchError(f"record {record.get('cell_id', '?')} lacks {', '.join(missing)}")
    if record["status"] not in STATUSES:
        raise BenchError(f"record {record['cell_id']} has status '{record['status']}' (valid: {', '.join(STATUSES)})")
    return record
