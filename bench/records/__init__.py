"""Typed, versioned records: one type per kind of cell, each part built once, read by attribute.

`load_record` reads a stored record of any earlier schema version (migrating it) and refuses a newer one;
`record_json` is what the store keeps. `machine_id` digests the machine facts that change latency.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from bench.records._decode import RecordError
from bench.records.schema import KINDS, SCHEMA_VERSION, NewerSchemaError, load_record, record_json
from bench.records.timing import FLAGS, LatencyStats, LayerResult, StreamLatency, Timing
from bench.records.types import (
    DEFAULT_ENGINE,
    ENCODINGS,
    STATUSES,
    Accuracy,
    ArtifactRefs,
    CellRecord,
    LayersRecord,
    Macs,
    ModelRecord,
    Record,
    Sizes,
)

__all__ = [
    "SCHEMA_VERSION", "KINDS", "STATUSES", "FLAGS", "ENCODINGS", "DEFAULT_ENGINE", "RecordError", "NewerSchemaError",
    "load_record", "record_json", "machine_id", "Timing", "LatencyStats", "StreamLatency", "Sizes", "Macs", "Accuracy",
    "ArtifactRefs", "LayerResult",
    "CellRecord", "ModelRecord", "LayersRecord", "Record",
]  # fmt: skip

# What identifies a machine for latency: results from another CPU or torch build must not be reused or compared.
_MACHINE_KEYS = ("arch", "cpu_model", "cpu_count", "memory_bytes", "hostname", "torch", "cuda_device")


def machine_id(machine: Mapping[str, Any]) -> str:
    """A digest of the machine facts that change latency."""
    facts = {key: machine.get(key) for key in _MACHINE_KEYS}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
