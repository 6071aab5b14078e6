"""Short labels for records: the one place that shortens a compressor variant, how it executed and where it ran.

Every table, plot and the HTML report name a cell through these functions, so a row reads the same in all of
them. A label is a function of the record alone (never of the other cells beside it): the same cell has the same
label in every report and every run. The full variant (`analysis.variant`) stays in the wide tables and the files.
What a compressor is called, its family and which parameters its label shows are the compressor's own declaration
(`compressors.presentation`), so a new compressor is labelled without an edit here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from bench.records import DEFAULT_ENGINE, CellRecord, ModelRecord
from compressors import Presentation, registry

__all__ = [
    "SCREEN_WIDTH", "LABEL_WIDTH", "FAMILIES", "presentation", "family", "families", "family_rank", "variant_key",
    "short_label", "short_executed", "short_engine", "short_place", "cut", "cut_label",
]  # fmt: skip

SCREEN_WIDTH = 120
"""Columns of the terminal every table the suite prints is laid out for (summary, compare, history)."""

LABEL_WIDTH = 26
"""The most characters a short label takes; a longer one is cut in the middle, where its least telling part is."""

FAMILIES = ("baseline", "unstructured", "unstructured CSR", "channel", "iterative", "quantization", "architecture",
            "low-rank", "chain", "dynamic", "other")  # fmt: skip
"""The families the suite knows, in legend order, with "other" (a compressor this version does not have) last: the
filter of the HTML report and the fixed colours of every figure. A family a compressor declares beyond these is
placed by `families`."""


def presentation(compressor: str) -> Presentation:
    """How `compressor` is named and grouped; a name this version does not register keeps its own name, in "other"."""
    try:
        return registry.get(compressor).presentation
    except KeyError:
        return Presentation(short=compressor)


def _short_name(compressor: str) -> str:
    return presentation(compressor).short or compressor


def family(record: CellRecord) -> str:
    """The compressor family a record belongs to (one of `families()`); a variant run on CSR kernels can be its own
    ("unstructured CSR"), since the headline result sets it apart from the dense-kernel cells."""
    return presentation(record.compressor).family_of(record.params)


def families() -> tuple[str, ...]:
    """Every family in legend order: the known `FAMILIES`, then the families that registered compressors declare
    beyond them (sorted, so the order does not depend on import order), then "other"."""
    declared = {registry.get(name).presentation.family for name in registry.names()}
    extra = sorted(declared - set(FAMILIES))
    return (*FAMILIES[:-1], *extra, FAMILIES[-1])


def family_rank(name: str) -> int:
    """`name`'s place in the legend (`families()`); a family no registered compressor declares goes with "other"."""
    ordered = families()
    return ordered.index(name) if name in ordered else len(ordered) - 1


def _defaults(compressor: str) -> dict[str, Any]:
    """The compressor's default parameters; none for a compressor this version no longer has."""
    try:
        config = registry.get(compressor)
    except KeyError:
        return {}
    fields = dataclasses.fields(config) if dataclasses.is_dataclass(config) else ()
    return {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}


def _params(compressor: str, params: Mapping[str, Any], headline_only: bool = False) -> list[str]:
    shown = presentation(compressor)
    headline = [key for key in shown.headline if params.get(key) is not None]
    if headline_only:
        return [shown.value_text(key, params[key]) for key in headline]
    defaults = _defaults(compressor)
    others = sorted(
        key for key, value in params.items() if value is not None and key not in headline and defaults.get(key) != value
    )
    return [shown.value_text(key, params[key]) for key in (*headline, *others)]


def _stages(stages: str) -> str:
    """`prune.unstructured(sparsity=0.9;scope=layer)+quant.cluster(bits=4)` -> `unstr 90%+cluster 4-bit`: each
    stage by its headline parameters only, or a chain of two stages would not fit."""
    shown = []
    for stage in stages.split("+"):
        name, _, rest = stage.partition("(")
        pairs = (part.partition("=") for part in rest.rstrip(")").split(";") if part)
        params = {key: value for key, _, value in pairs}
        shown.append(" ".join([_short_name(name), *_params(name, params, headline_only=True)]))
    return "+".join(shown)


_PART = 8
"""The fewest characters `cut_label` cuts the model or the place to, so each still says what it is."""


def cut(text: str, width: int) -> str:
    """`text` in at most `width` characters, cut in the middle (`…` marks it): the start says what a label is and the
    end tells it from its neighbours, so the middle is what a reader misses least."""
    if len(text) <= width:
        return text
    if width < 1:
        return ""
    head = (width - 1) // 2
    return f"{text[:head]}…{text[len(text) - (width - 1 - head) :]}"


def cut_label(label: str, width: int) -> str:
    """A cell's `model | variant | place` label in `width` characters, each part cut in the middle in turn: the
    model's name first (tables group rows by model, so it is the part a reader has already), then the place, and
    the variant, which tells the rows apart, only when nothing else is left to cut."""
    model, sep, rest = label.partition(" | ")
    if len(label) <= width or not sep:
        return cut(label, width)
    model = cut(model, max(width - len(rest) - len(sep), _PART))
    variant, between, place = rest.rpartition(" | ")
    if between:
        place = cut(place, max(width - len(model) - len(sep) - len(variant) - len(between), _PART))
        rest = variant + between + place
    return cut(model + sep + rest, width)


def short_label(record: CellRecord) -> str:
    """The variant in a few words, with how it was trained where a run has more than one way.

    Examples: `unstr 90% csr`, `channel 70% +relational s2`, `exit 1+2 conf 0.9`, and for a chain
    `unstr 90%+cluster 4-bit`.
    A recovery method other than plain fine-tuning shows as `+method`, a seed as `sN`; at most `LABEL_WIDTH`.
    """
    compressor = record.compressor
    spec = presentation(compressor).stages
    stages = record.params.get(spec) if spec is not None else None
    if isinstance(stages, str):
        text = _stages(stages)
    else:
        text = " ".join([_short_name(compressor), *_params(compressor, record.params)])
    method = record.recovery.get("method", "finetune")
    suffix = (f" +{method}" if method != "finetune" else "") + (
        f" s{record.recovery['seed']}" if "seed" in record.recovery else ""
    )
    return cut(text, LABEL_WIDTH - len(suffix)) + suffix


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
    return cut(text.split(" (")[0].split(",")[0], 14)


_ENGINES = {DEFAULT_ENGINE: "ts", "onnxruntime": "ort"}


def short_engine(engine: str) -> str:
    """`ts` for TorchScript, `ort` for ONNX Runtime; any other engine by its name."""
    return _ENGINES.get(engine, engine)


def short_place(record: CellRecord) -> str:
    """Where it ran, always naming the engine: `cpu ts t1 b1`, `pi ort t4 b8`."""
    return f"{record.target} {short_engine(record.engine)} t{record.threads} b{record.batch}"
