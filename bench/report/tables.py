"""The report's tables, from records: per model (compact or full), the targets' machines, the layer sweeps, and
the notes that say how to read them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from bench.analysis.series import smallest_encoding, variant
from bench.records import ENCODINGS, LayersRecord, ModelRecord, Record

__all__ = ["machine_table", "model_table", "layer_table", "pattern_layers", "notes"]

_MB = 1e6


def _speedup_text(record: ModelRecord) -> str:
    if record.timing is None:
        return f"{record.status}: {record.error or ''}"
    timing = record.timing
    text = f"{timing.speedup_median:.2f}x"
    if timing.speedup_ci_low is not None and timing.speedup_ci_high is not None:
        text += f" [{timing.speedup_ci_low:.2f}, {timing.speedup_ci_high:.2f}]"
    return text + _flags(record)


def _flags(record: Record) -> str:
    """ " (busy, throttled)": why a timing may be off, as the notes explain."""
    return f" ({', '.join(record.flags)})" if record.flags else ""


def _accuracy_text(record: ModelRecord) -> str:
    accuracy = record.accuracy
    if accuracy is None or accuracy.top1 is None:
        return (accuracy.note if accuracy else None) or "n/a"
    after = f"{100 * accuracy.top1:.2f}%"
    seed = f", seed {record.recovery['seed']}" if "seed" in record.recovery else ""
    if record.finetune_steps and accuracy.before_recovery is not None:
        method = record.recovery.get("method", "finetune")
        # A method that trains its own budget (from scratch) says how many steps it really trained.
        steps = record.compressor_info.get("recovery", {}).get("steps", record.finetune_steps)
        return f"{100 * accuracy.before_recovery:.2f}% -> {after} ({method}, {steps} steps{seed})"
    if record.finetune_steps:  # trained as it was compressed: no accuracy before recovery to show
        return f"{after} (trained {record.finetune_steps} steps{seed})"
    return after


def _mb(encoding: tuple[str, int]) -> tuple[str, float]:
    return encoding[0], encoding[1] / _MB


def _first_ok(records: list[ModelRecord]) -> ModelRecord | None:
    return next((r for r in records if r.ok), None)


def _per_place(group: list[ModelRecord], text: Callable[[ModelRecord], str]) -> str:
    """`text` once when every place gives the same, else per place: int8 packs for each device's engine, and each
    inference engine runs (and is evaluated on) its own form of the model."""
    said = {r.place: text(r) for r in group if r.ok}
    if len(set(said.values())) <= 1:
        return next(iter(said.values()), "-")
    return "; ".join(f"{place}: {value}" for place, value in said.items())


def _row_label(record: ModelRecord) -> str:
    """The variant, and how it was trained where a run has more than one way: a recovery method other than plain
    fine-tuning, a seed other than 0 (each its own row: a study's seeds are not averaged away here)."""
    label = variant(record)
    method = record.recovery.get("method", "finetune")
    if method != "finetune":
        label += f" [{method}]"
    if "seed" in record.recovery:
        label += f" (seed {record.recovery['seed']})"
    return label


def model_table(records: list[ModelRecord], full: bool) -> tuple[list[str], list[list[Any]]]:
    """Rows: compressor variants; columns: size, MACs, accuracy, and the speedup on each target/threads/batch."""
    places = list(dict.fromkeys(r.place for r in records))
    by_variant: dict[str, list[ModelRecord]] = defaultdict(list)
    for record in records:
        by_variant[_row_label(record)].append(record)
    headers = ["compressor", "executed as", "non-zero / params", "dense MB", "smallest MB (encoding)"]
    if full:
        headers += ["gzip MB", "CSR MB", "stored MB", "packed MB", "Huffman MB", "MMACs dense", "MMACs effective"]
    headers += ["theor. speedup"] + [f"speedup {p} [95% CI]" for p in places]
    if full:
        headers += [f"latency ms {p} (base -> this)" for p in places] + ["efficiency"]
    headers += ["top-1 (before -> after recovery)"]
    rows = []
    for name, group in by_variant.items():
        first = _first_ok(group)
        if first is None or first.sizes is None or first.macs is None:
            row = [name, "-", "-", "-", "-"] + (["-"] * 7 if full else []) + ["-"]
        else:
            sizes = first.sizes
            row = [
                name, _per_place(group, lambda r: r.executed_as or "-"),
                f"{sizes.params_nonzero:,} / {sizes.params_total:,}",
                f"{sizes.dense_bytes / _MB:.2f}", "{1:.3f} ({0})".format(*_mb(smallest_encoding(first))),
            ]  # fmt: skip
            if full:
                encodings = sizes.encodings()
                row += [
                    f"{encodings[key] / _MB:.3f}" if key in encodings else "-" for key in ENCODINGS if key != "dense"
                ]
                row += [f"{first.macs.dense / 1e6:.3g}", f"{first.macs.effective / 1e6:.3g}"]
            row.append(f"{first.macs.theoretical_speedup:.2f}x")
        at = {r.place: r for r in group}
        row += [_speedup_text(at[p]) if p in at else "" for p in places]
        if full:
            for place in places:
                timing = at[place].timing if place in at else None
                row.append(f"{1e3 * timing.baseline_median_s:.3f} -> {1e3 * timing.median_s:.3f}" if timing else "")
            efficiency = first.efficiency if first is not None else None
            row.append(f"{efficiency:.2f}" if efficiency is not None else "-")
        row.append(_per_place(group, _accuracy_text) if first is not None else "-")
        rows.append(row)
    return headers, rows


def machine_table(records: list[Record]) -> tuple[list[str], list[list[Any]]]:
    """One row per target of the run: the device that timed its cells, as its worker described it."""
    headers = ["target", "arch", "CPU", "cores", "memory GiB", "GPU", "torch", "int8 engines", "OS"]
    machines: dict[str, Mapping[str, Any]] = {}
    for record in records:
        if record.machine:
            machines.setdefault(record.target, record.machine)
    rows = []
    for target, m in machines.items():
        memory = f"{m['memory_bytes'] / 2**30:.1f}" if m.get("memory_bytes") else "?"
        rows.append([
            target, m.get("arch", "?"), m.get("cpu_model") or "?", m.get("cpu_count", "?"), memory, _gpu_text(m),
            m.get("torch", "?"), ", ".join(m.get("quantized_engines") or []), m.get("os", "?"),
        ])  # fmt: skip
    return headers, rows


def _gpu_text(machine: Mapping[str, Any]) -> str:
    """The GPU with the driver and CUDA runtime its timings depend on; older records only have its name."""
    cuda = machine.get("cuda")
    if not cuda:
        return machine.get("cuda_device") or "-"
    return f"{cuda['name']} (driver {cuda.get('driver') or '?'}, CUDA {cuda.get('runtime') or '?'})"


def layer_table(records: list[LayersRecord]) -> tuple[list[str], list[list[Any]]]:
    """Rows: sparsities of the layer sweep (then 2:4, on a GPU); the time-weighted sparse speedup and how many
    GEMMs the sparse kernel wins."""
    headers = [
        "sparsity", "sparse kernel", "dense GEMMs ms", "sparse GEMMs ms", "speedup (all layers)",
        "GEMM shapes where sparse wins (CI > 1)", "theor. speedup",
    ]  # fmt: skip
    rows = []
    for record in records:
        if record.dense_s is None or record.sparse_s is None or record.speedup_median is None:
            continue
        wins = sum(1 for layer in record.layers if layer.speedup_ci_low is not None and layer.speedup_ci_low > 1.0)
        theory = f"{record.theoretical_speedup:.1f}x" if record.theoretical_speedup is not None else "-"
        rows.append([
            record.pattern or f"{float(record.params['sparsity']):g}", _kernel_text(record),
            f"{1e3 * record.dense_s:.2f}", f"{1e3 * record.sparse_s:.2f}",
            f"{record.speedup_median:.2f}x" + _flags(record), f"{wins} / {len(record.layers)}", theory,
        ])  # fmt: skip
    return headers, rows


def _kernel_text(record: LayersRecord) -> str:
    """CSR, or 2:4 fp16 with its backend and how many shapes had to be padded (the notes list them)."""
    if record.pattern is None:
        return "CSR"
    padded = record.gemms_padded
    text = f"{record.pattern} fp16, {record.semi_structured_backend or '?'}"
    return text + (f", {padded} of {len(record.layers)} shapes padded" if padded else "")


def pattern_layers(records: list[Record]) -> dict[tuple[str, str], list[LayersRecord]]:
    """(model, where) -> the ok layer records with a sparsity pattern (2:4), which the CSR series leaves out."""
    out: dict[tuple[str, str], list[LayersRecord]] = defaultdict(list)
    for record in records:
        if isinstance(record, LayersRecord) and record.ok and record.pattern is not None:
            out[(record.model, record.place)].append(record)
    return out


def _stage_sizes(record: ModelRecord) -> str:
    """The bytes of every encoding after each stage of a chain, in stage order."""
    steps = []
    stages = zip(record.compressor_info["stages"], record.stage_sizes, strict=True)
    for index, (stage, sizes) in enumerate(stages, 1):
        shown = [f"{name} {size / _MB:.3f} MB" for name, size in sizes.encodings().items()]
        steps.append(f"after stage {index} ({stage['name']}): {', '.join(shown)}")
    return "; ".join(steps)


def _separable_ratios(record: ModelRecord) -> str:
    """Depthwise-separable swap: measured parameter and MAC ratios of the replaced convs against 1/O + 1/K^2."""
    assert record.timing is not None and record.macs is not None, "only ok records have ratios to show"
    info = record.compressor_info
    layers = info["layers"].values()
    formula = sum(layer["theoretical_ratio"] * layer["params_before"] for layer in layers) / info["params_before"]
    return (
        f"replaced convs: {info['convs_replaced']};"
        f" their params x{info['params_after'] / info['params_before']:.3f} and"
        f" MACs x{info['macs_after'] / info['macs_before']:.3f} against 1/O + 1/K^2 = {formula:.3f} (weighted by"
        f" params); whole-model speedup measured {record.timing.speedup_median:.2f}x of"
        f" {record.macs.theoretical_speedup:.2f}x"
        " theoretical"
    )


def notes(records: list[Record]) -> list[str]:
    notes = [
        "## Notes",
        "",
        "- Speedup = baseline time / compressed time, from baseline and compressed runs interleaved in one worker"
        " process; the interval is the 95% distribution-free CI of the median per-round ratio.",
        "- *theor. speedup* = dense MACs / effective MACs (non-zero weights x output positions, so weights that"
        " quantization rounds to zero count as skippable too; bit-widths do not enter it); efficiency ="
        " measured / theoretical.",
        "- *simulated* cells run decoded fp32 weights: their sizes are real encodings, their latency is what runs.",
        "- *busy*: other processes used the CPU during the cell; *noisy*: IQR above 10% of the median;"
        " *throttled*: the device was at or above its throttle temperature, or its firmware reported throttling,"
        " before, during or after the cell.",
        "- Accuracy is n/a for models without real weights: no number from random weights is shown.",
    ]
    for record in records:
        about = f"- {record.model} {variant(record)}"
        if isinstance(record, ModelRecord) and record.ok and record.compressor == "arch.dsconv":
            notes.append(f"{about}: {_separable_ratios(record)}")
        if isinstance(record, ModelRecord) and record.ok and record.stage_sizes:
            notes.append(f"{about}: {_stage_sizes(record)}")
        if record.execution_notes:
            notes.append(f"{about}: {record.execution_notes}")
        if not record.ok:
            notes.append(f"- {record.status}: {record.model} {variant(record)} on {record.place}: {record.error}")
    return notes + [""]
