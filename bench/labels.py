"""Short labels for records: the one place that shortens a compressor variant, how it executed and where it ran.

Every table, plot and the HTML report name a cell through these functions, so a row reads the same in all of
them. A label is a function of the record alone (never of the other cells beside it): the same cell has the same
label in every report and every run. The full variant (`analysis.variant`) stays in the wide tables and the files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from bench.records import DEFAULT_ENGINE, CellRecord, ModelRecord
from compressors import registry

__all__ = [
    "LABEL_WIDTH", "FAMILIES", "family", "variant_key", "short_label", "short_executed", "short_engine", "short_place",
]  # fmt: skip

LABEL_WIDTH = 26
"""The most characters a short label takes; a longer one is cut in the middle, where its least telling part is."""

_NAMES = {
    "none": "none", "prune.unstructured": "unstr", "prune.channel": "channel", "prune.iterative": "IMP",
    "quant.int8": "int8", "quant.int8_dynamic": "int8 dyn", "quant.bits": "quant", "quant.binary": "binary",
    "quant.cluster": "cluster", "arch.dsconv": "dsconv", "lowrank.svd": "svd", "chain": "chain",
    "dynamic.early_exit": "exit", "dynamic.width": "slim",
}  # fmt: skip
"""Compressor -> its short name; an unknown compressor keeps its own name."""

_HEADLINE = {
    "prune.unstructured": ("sparsity",), "prune.channel": ("macs_removed",), "prune.iterative": ("rounds",),
    "quant.bits": ("bits",), "quant.cluster": ("bits",), "lowrank.svd": ("rank_ratio",),
    "dynamic.early_exit": ("exits", "rule", "threshold"), "dynamic.width": ("width",),
}  # fmt: skip
"""The parameters a label always shows, first and in this order (the level a sweep varies); the others are shown
only where they differ from the compressor's default."""

_PERCENT = ("sparsity", "macs_removed", "rate", "rank_ratio", "width", "energy")


def _pct(value: Any) -> str:
    return f"{100 * float(value):g}%"


_FORMATS: Mapping[str, Callable[[Any], str]] = {
    **dict.fromkeys(_PERCENT, _pct),
    "bits": lambda value: f"{value}-bit",
    "rounds": lambda value: f"x{value}",
    "rewind": lambda value: f"rewind {value}",
    "exits": str,
    "threshold": str,
    "rewind_step": lambda value: f"@{value}",
    "rule": lambda value: {"confidence": "conf", "entropy": "ent"}.get(str(value), str(value)),
}
"""How a parameter reads in a label; any other shows as its value when that is a word, else as key=value."""

FAMILIES = ("baseline", "unstructured", "unstructured CSR", "channel", "iterative", "quantization", "architecture",
            "low-rank", "chain", "dynamic", "other")  # fmt: skip
"""Compressor families, in legend order: the filter of the HTML report and the colours of every figure."""

_FAMILY = {
    "none": "baseline", "prune.unstructured": "unstructured", "prune.channel": "channel",
    "prune.iterative": "iterative", "quant.int8": "quantization", "quant.int8_dynamic": "quantization",
    "quant.bits": "quantization", "quant.binary": "quantization", "quant.cluster": "quantization",
    "arch.dsconv": "architecture", "lowrank.svd": "low-rank", "chain": "chain", "dynamic.early_exit": "dynamic",
    "dynamic.width": "dynamic",
}  # fmt: skip


def family(record: CellRecord) -> str:
    """The compressor family of `FAMILIES` a record belongs to; unstructured pruning run on CSR kernels is its own,
    since the headline result sets it apart from the dense-kernel cells."""
    name = _FAMILY.get(record.compressor, "other")
    if name == "unstructured" and record.params.get("execution") == "csr":
        return "unstructured CSR"
    return name


def _defaults(compressor: str) -> dict[str, Any]:
    """The compressor's default parameters; none for a compressor this version no longer has."""
    try:
        config = registry.get(compressor)
    except KeyError:
        return {}
    fields = dataclasses.fields(config) if dataclasses.is_dataclass(config) else ()
    return {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}


def _value(key: str, value: Any) -> str:
    if key in _FORMATS:
        return _FORMATS[key](value)
    if isinstance(value, str) and value.replace("_", "").isalnum() and not value.isdigit():
        return value
    return f"{key}={value}"


def _params(compressor: str, params: Mapping[str, Any], headline_only: bool = False) -> list[str]:
    headline = [key for key in _HEADLINE.get(compressor, ()) if params.get(key) is not None]
    if headline_only:
        return [_value(key, params[key]) for key in headline]
    defaults = _defaults(compressor)
    others = sorted(
        key for key, value in params.items() if value is not None and key not in headline and defaults.get(key) != value
    )
    return [_value(key, params[key]) for key in (*headline, *others)]


def _chain(stages: str) -> str:
    """`prune.unstructured(sparsity=0.9;scope=layer)+quant.cluster(bits=4)` -> `unstr 90%+cluster 4-bit`: each
    stage by its headline parameters only, or a chain of two stages would not fit."""
    shown = []
    for stage in stages.split("+"):
        name, _, rest = stage.partition("(")
        pairs = (part.partition("=") for part in rest.rstrip(")").split(";") if part)
        params = {key: value for key, _, value in pairs}
        shown.append(" ".join([_NAMES.get(name, name), *_params(name, params, headline_only=True)]))
    return "+".join(shown)


def _cut(text: str, width: int = LABEL_WIDTH) -> str:
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return f"{text[:head]}…{text[len(text) - (width - 1 - head) :]}"


def short_label(record: CellRecord) -> str:
    """The variant in a few words, with how it was trained where a run has more than one way.

    Examples: `unstr 90% csr`, `channel 70% +relational s2`, `exit 1+2 conf 0.9`, and for a chain
    `unstr 90%+cluster 4-bit`.
    A recovery method other than plain fine-tuning shows as `+method`, a seed as `sN`; at most `LABEL_WIDTH`.
    """
    compressor = record.compressor
    if compressor == "chain" and isinstance(record.params.get("stages"), str):
        text = _chain(record.params["stages"])
    else:
        text = " ".join([_NAMES.get(compressor, compressor), *_params(compressor, record.params)])
    method = record.recovery.get("method", "finetune")
    suffix = (f" +{method}" if method != "finetune" else "") + (
        f" s{record.recovery['seed']}" if "seed" in record.recovery else ""
    )
    return _cut(text, LABEL_WIDTH - len(suffix)) + suffix


def variant_key(record: CellRecord) -> tuple[Any, ...]:
    """What makes two records the same row: compressor, parameters and how it was trained (plain fine-tuning
    named or not is the same), whatever their place."""
    recovery = {k: v for k, v in record.recovery.items() if not (k == "method" and v == "finetune")}
    return record.compressor, tuple(sorted(record.params.items())), tuple(sorted(recovery.items()))


_EXECUTED = (
    ("simulated", "simulated"), ("sparse CSR", "CSR"), ("dense kernels (zeros stored)", "dense, zeros"),
    ("early exit", "early exit"), ("dense at width", "dense"), ("int8 kernels", "int8"), ("int8 QDQ", "int8 QDQ"),
)  # fmt: skip
"""Prefix of the worker's description -> a word or two; otherwise the description up to its first aside."""


def short_executed(record: ModelRecord) -> str:
    """How the cell really ran, in a word or two: `dense`, `dense, zeros`, `CSR`, `int8`, `simulated`, ..."""
    text = record.executed_as or "-"
    for prefix, short in _EXECUTED:
        if text.startswith(prefix):
            return short
    return _cut(text.split(" (")[0].split(",")[0], 14)


_ENGINES = {DEFAULT_ENGINE: "ts", "onnxruntime": "ort"}


def short_engine(engine: str) -> str:
    """`ts` for TorchScript, `ort` for ONNX Runtime; any other engine by its name."""
    return _ENGINES.get(engine, engine)


def short_place(record: CellRecord) -> str:
    """Where it ran, always naming the engine: `cpu ts t1 b1`, `pi ort t4 b8`."""
    return f"{record.target} {short_engine(record.engine)} t{record.threads} b{record.batch}"
