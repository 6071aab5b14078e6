"""Schema versions of the stored record: the loader migrates older ones and refuses newer ones.

pyperf keeps reading files of older versions through a versioned loader, asv keeps an `api_version`; here
each version has one migration to the next, so a record written by any earlier suite is read as the newest
type, and one written by a newer suite is refused with one line instead of being half understood.

Version history:
    1: one flat object per cell (`latency_median_s`, `size_dense_bytes`, `accuracy_top1`, ...).
    2: the parts are objects of their own: `timing` (the worker's answer), `sizes`, `macs`, `accuracy`; the
       layer sweep's GEMMs have `dense_median_s`/`sparse_median_s`; derived figures (theoretical speedup of a
       model, efficiency) are no longer stored.
    3: `accuracy.images`, the size of the held-out set (for top-1's standard error); version-2 records get it
       from their note, which the suite wrote as "top-1 on SET (N images)".

Parts that only add detail come without a new version, as the decoder ignores keys it does not know: a model
record's optional `latency` (the distribution over a stream of real inputs, see `StreamLatency`) is absent from
older records and read as None; so is its `artifacts`, the SHA-256 of the two files the worker timed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from bench.records._decode import RecordError, decode, encode
from bench.records.types import ENCODINGS, CellRecord, LayersRecord, ModelRecord, Record

__all__ = ["SCHEMA_VERSION", "KINDS", "load_record", "record_json", "NewerSchemaError"]

SCHEMA_VERSION = 3
KINDS: dict[str, type[ModelRecord] | type[LayersRecord]] = {"model": ModelRecord, "layers": LayersRecord}


class NewerSchemaError(RecordError):
    """A record written by a newer version of the suite than this one."""


def record_json(record: CellRecord) -> dict[str, Any]:
    """The JSON object stored for `record`, with its kind."""
    return {"kind": record.kind, **encode(record)}


def load_record(data: Any, where: str = "record") -> Record:
    """The typed record of a stored JSON object of any schema version up to `SCHEMA_VERSION`.

    Raises:
        NewerSchemaError: the record was written by a newer suite.
        RecordError: it is not a record, or its fields do not have the types of its version.
    """
    if not isinstance(data, Mapping):
        raise RecordError(f"{where}: expected an object, got {type(data).__name__}")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RecordError(f"{where} has no valid schema_version (got {version!r})")
    if version > SCHEMA_VERSION:
        raise NewerSchemaError(
            f"{where} has schema version {version}, written by a newer compression-bench; this one reads versions"
            f" 1 to {SCHEMA_VERSION}: upgrade it"
        )
    for step in range(version, SCHEMA_VERSION):
        data = _MIGRATIONS[step](data)
    kind = data.get("kind")
    if kind not in KINDS:
        raise RecordError(f"{where} has kind {kind!r} (known: {', '.join(KINDS)})")
    return decode(KINDS[kind], {**data, "schema_version": SCHEMA_VERSION}, where)


_V1_TIMING = {
    "latency_baseline_median_s": "baseline_median_s", "latency_baseline_iqr_s": "baseline_iqr_s",
    "latency_median_s": "median_s", "latency_iqr_s": "iqr_s", "speedup_median": "speedup_median",
    "speedup_ci_low": "speedup_ci_low", "speedup_ci_high": "speedup_ci_high", "timing_rounds": "rounds",
    "timing_stopped_by": "stopped_by", "timing_wall_s": "wall_s", "iters_per_block": "iters_per_block",
    "other_cpu_cores": "other_cpu_cores", "busy": "busy", "noisy": "noisy", "throttled": "throttled",
    "throttle_reason": "throttle_reason", "cooldown_waited_s": "cooldown_waited_s",
    "thermal_before": "thermal_before", "thermal_after": "thermal_after",
    "samples_baseline_s": "samples_baseline_s", "samples_s": "samples_s", "samples_speedup": "samples_speedup",
}  # fmt: skip
# Version 1 kept sizes under the names `bench.measure` gives them (`size_dense_bytes`), which `Sizes` still reads.
_V1_SIZES = {"params_total": "params_total", "params_nonzero": "params_nonzero"} | {
    f"size_{name}_bytes": f"{name}_bytes" for name in ENCODINGS
}
_V1_ACCURACY = {
    "accuracy_top1": "top1", "accuracy_baseline": "baseline", "accuracy_before_recovery": "before_recovery",
    "accuracy_note": "note",
}  # fmt: skip
_V1_MACS = {"macs_dense": "dense", "macs_effective": "effective", "macs_baseline": "baseline"}
# Figures version 2 derives from the others instead of storing them.
_V1_DERIVED = ("theoretical_speedup", "efficiency", "gemms_padded")


# Version-1 records written before the worker read thermal zones: unknown, not "not throttled".
_V1_BEFORE_THERMAL: dict[str, Any] = {
    "throttled": None,
    "throttle_reason": None,
    "cooldown_waited_s": None,
    "thermal_before": {},
    "thermal_after": {},
}


def _part(flat: dict[str, Any], names: Mapping[str, str]) -> dict[str, Any] | None:
    """Pop the flat keys of one part into an object of its own; None when the record has none of them."""
    found = {new: flat.pop(old) for old, new in names.items() if old in flat}
    return found or None


def _v1_to_v2(data: Mapping[str, Any]) -> dict[str, Any]:
    flat = dict(data)
    if flat.get("kind") == "layers":
        return _v1_layers_to_v2(flat)
    for key in _V1_DERIVED:
        flat.pop(key, None)
    flat["baseline_dense_bytes"] = flat.pop("baseline_size_dense_bytes", None)
    parts = {"timing": _V1_TIMING, "sizes": _V1_SIZES, "accuracy": _V1_ACCURACY, "macs": _V1_MACS}
    for name, names in parts.items():
        flat[name] = _part(flat, names)
    if flat["timing"] is not None:
        flat["timing"] = {**_V1_BEFORE_THERMAL, **flat["timing"]}
    if isinstance(flat.get("stage_sizes"), list):
        flat["stage_sizes"] = [_part(dict(stage), _V1_SIZES) for stage in flat["stage_sizes"]]
    return flat


def _v1_layers_to_v2(flat: dict[str, Any]) -> dict[str, Any]:
    flat["dense_s"] = flat.pop("latency_baseline_median_s", None)
    flat["sparse_s"] = flat.pop("latency_median_s", None)
    for key in ("speedup_median", "speedup_ci_low", "speedup_ci_high", "other_cpu_cores", "busy", "throttled",
                "throttle_reason", "gemms_padded"):  # fmt: skip
        flat.pop(key, None)
    layers = []
    for layer in flat.get("layers") or []:
        layer = dict(layer)
        sparse = layer.pop("csr_median_s", None)
        semi = layer.pop("semi_structured_median_s", None)
        layer["sparse_median_s"] = sparse if sparse is not None else semi
        layer.setdefault("throttled", None)
        layer.setdefault("throttle_reason", None)
        layers.append(layer)
    flat["layers"] = layers
    return flat


_V2_IMAGES = re.compile(r"\((\d+) images\)$")


def _v2_to_v3(data: Mapping[str, Any]) -> dict[str, Any]:
    record = dict(data)
    accuracy = record.get("accuracy")
    if isinstance(accuracy, Mapping):
        note = accuracy.get("note")
        found = _V2_IMAGES.search(note) if isinstance(note, str) else None
        record["accuracy"] = {**accuracy, "images": int(found.group(1)) if found else None}
    return record


_MIGRATIONS: dict[int, Callable[[Mapping[str, Any]], dict[str, Any]]] = {1: _v1_to_v2, 2: _v2_to_v3}
