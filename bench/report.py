"""Reports built from the store only: a table per model in the terminal, a Markdown report with figures on disk."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, TextIO

from tabulate import tabulate

from bench.analysis import accuracy_points, break_even, finding, layer_series, pareto_front, short_variant, smallest_encoding, speedup_series, variant, where
from bench.plots import plot_bits, plot_layers, plot_pareto, plot_speedup_vs_sparsity, plot_theory_vs_measured, slug
from bench.store import Store

__all__ = ["write_report", "machine_table", "model_table", "layer_table"]

_MB = 1e6


def _speedup_text(record: dict[str, Any]) -> str:
    if record["status"] != "ok":
        return f"{record['status']}: {record.get('error') or ''}"
    text = f"{record['speedup_median']:.2f}x"
    if record.get("speedup_ci_low") is not None:
        text += f" [{record['speedup_ci_low']:.2f}, {record['speedup_ci_high']:.2f}]"
    return text + _flags(record)


def _flags(record: dict[str, Any]) -> str:
    """" (busy, throttled)": why a timing may be off, as the notes explain."""
    flags = [flag for flag in ("busy", "noisy", "throttled") if record.get(flag)]
    return f" ({', '.join(flags)})" if flags else ""


def _accuracy_text(record: dict[str, Any]) -> str:
    if record.get("accuracy_top1") is None:
        return record.get("accuracy_note") or "n/a"
    after = f"{100 * record['accuracy_top1']:.2f}%"
    if record.get("finetune_steps") and record.get("accuracy_before_recovery") is not None:
        method = (record.get("recovery") or {}).get("method", "finetune")
        return f"{100 * record['accuracy_before_recovery']:.2f}% -> {after} ({method}, {record['finetune_steps']} steps)"
    return after


def _mb(encoding: tuple[str, int]) -> tuple[str, float]:
    return encoding[0], encoding[1] / _MB


def _first_ok(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((r for r in records if r["status"] == "ok"), None)


def _executed_as(group: list[dict[str, Any]]) -> str:
    """What ran, once when every target ran the same, else per target (int8 packs for each device's engine)."""
    ran = {where(r): r["executed_as"] for r in group if r["status"] == "ok"}
    if len(set(ran.values())) <= 1:
        return next(iter(ran.values()), "-")
    return "; ".join(f"{place}: {executed}" for place, executed in ran.items())


def model_table(records: list[dict[str, Any]], full: bool) -> tuple[list[str], list[list[Any]]]:
    """Rows: compressor variants; columns: size, MACs, accuracy, and the speedup on each target/threads/batch."""
    places = list(dict.fromkeys(where(r) for r in records))
    by_variant: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_variant[variant(record)].append(record)
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
        if first is None:
            first = group[0]
            row = [name, "-", "-", "-", "-"] + (["-"] * 7 if full else []) + ["-"]
        else:
            row = [
                name, _executed_as(group), f"{first['params_nonzero']:,} / {first['params_total']:,}",
                f"{first['size_dense_bytes'] / _MB:.2f}", "{1:.3f} ({0})".format(*_mb(smallest_encoding(first))),
            ]  # fmt: skip
            if full:
                sizes = ("size_gzip_bytes", "size_csr_bytes", "size_stored_bytes", "size_packed_bytes", "size_huffman_bytes")
                row += [f"{first[key] / _MB:.3f}" if first.get(key) is not None else "-" for key in sizes]
                row += [f"{first['macs_dense'] / 1e6:.3g}", f"{first['macs_effective'] / 1e6:.3g}"]
            row.append(f"{first['theoretical_speedup']:.2f}x")
        at = {where(r): r for r in group}
        row += [_speedup_text(at[p]) if p in at else "" for p in places]
        if full:
            for place in places:
                r = at.get(place)
                ok = r is not None and r["status"] == "ok"
                row.append(f"{1e3 * r['latency_baseline_median_s']:.3f} -> {1e3 * r['latency_median_s']:.3f}" if ok else "")
            row.append(f"{first['efficiency']:.2f}" if first.get("efficiency") is not None else "-")
        row.append(_accuracy_text(first) if first["status"] == "ok" else "-")
        rows.append(row)
    return headers, rows


def machine_table(records: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """One row per target of the run: the device that timed its cells, as its worker described it."""
    headers = ["target", "arch", "CPU", "cores", "memory GiB", "GPU", "torch", "int8 engines", "OS"]
    machines: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.get("machine"):
            machines.setdefault(record["target"], record["machine"])
    rows = []
    for target, m in machines.items():
        memory = f"{m['memory_bytes'] / 2**30:.1f}" if m.get("memory_bytes") else "?"
        rows.append([
            target, m.get("arch", "?"), m.get("cpu_model") or "?", m.get("cpu_count", "?"), memory, _gpu_text(m),
            m.get("torch", "?"), ", ".join(m.get("quantized_engines") or []), m.get("os", "?"),
        ])  # fmt: skip
    return headers, rows


def _gpu_text(machine: dict[str, Any]) -> str:
    """The GPU with the driver and CUDA runtime its timings depend on; older records only have its name."""
    cuda = machine.get("cuda")
    if not cuda:
        return machine.get("cuda_device") or "-"
    return f"{cuda['name']} (driver {cuda.get('driver') or '?'}, CUDA {cuda.get('runtime') or '?'})"


def layer_table(records: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Rows: sparsities of the layer sweep (then 2:4, on a GPU); the time-weighted sparse speedup and how many
    GEMMs the sparse kernel wins."""
    headers = [
        "sparsity", "sparse kernel", "dense GEMMs ms", "sparse GEMMs ms", "speedup (all layers)",
        "GEMM shapes where sparse wins (CI > 1)", "theor. speedup",
    ]  # fmt: skip
    rows = []
    for record in records:
        wins = sum(1 for layer in record["layers"] if layer["speedup_ci_low"] > 1.0)
        pattern = record["params"].get("pattern")
        rows.append([
            pattern or f"{record['params']['sparsity']:g}", _kernel_text(record), f"{1e3 * record['latency_baseline_median_s']:.2f}",
            f"{1e3 * record['latency_median_s']:.2f}", f"{record['speedup_median']:.2f}x" + _flags(record),
            f"{wins} / {len(record['layers'])}", f"{record['theoretical_speedup']:.1f}x",
        ])  # fmt: skip
    return headers, rows


def _kernel_text(record: dict[str, Any]) -> str:
    """CSR, or 2:4 fp16 with its backend and how many shapes had to be padded (the notes list them)."""
    if "pattern" not in record["params"]:
        return "CSR"
    padded = record.get("gemms_padded") or 0
    text = f"{record['params']['pattern']} fp16, {record.get('semi_structured_backend') or '?'}"
    return text + (f", {padded} of {len(record['layers'])} shapes padded" if padded else "")


def _pattern_layers(records: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(model, where) -> the ok layer records with a sparsity pattern (2:4), which the CSR series leaves out."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if record["kind"] == "layers" and record["status"] == "ok" and "pattern" in record["params"]:
            out[(record["model"], where(record))].append(record)
    return out


def write_report(store: Store, run_id: str | None, stream: TextIO) -> Path:
    """Print the run's tables and finding to `stream`; write `report.md` and figures next to the store.

    Returns:
        The path of the Markdown report.
    """
    run = store.run(run_id)
    run_id = run["run_id"]
    records = store.records(run_id)
    directory = store.path.parent / "runs" / run_id
    directory.mkdir(parents=True, exist_ok=True)
    md: list[str] = [f"# compression-bench run {run_id}", ""]
    commit = run["commit"].get("commit") or "unknown"
    md += [
        f"- started {run['started_at']}, finished {run['finished_at'] or '-'} ({run['status']})",
        f"- code: commit {commit}{' (dirty)' if run['commit'].get('dirty') else ''}",
        "",
    ]
    headers, rows = machine_table(records)
    md += ["## Targets", "", tabulate(rows, headers, tablefmt="github"), ""]
    layers = layer_series(records)
    layer_break_even: dict[tuple[str, str], tuple[str, float | None]] = {}
    for key, group in layers.items():
        layer_break_even[key] = break_even([(r["params"]["sparsity"], r["speedup_median"]) for r in group])

    findings, figures = [], []
    for key, series in speedup_series(records).items():
        model, place = key
        phrase = layer_break_even.get(key, (None, None))[0]
        findings.append(finding(series, phrase, model, place))
        figure = plot_speedup_vs_sparsity(series, f"{model}, {place}: speedup vs MACs removed", directory / f"speedup-{slug(model)}-{slug(place)}.png")
        figures += [f"![{model} speedup vs sparsity]({figure.name})", ""]
    if findings:
        md += ["## Finding", ""] + [line for text in findings for line in (text, "")] + figures

    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if record["kind"] == "model":
            by_model[record["model"]].append(record)
    for model, group in by_model.items():
        headers, rows = model_table(group, full=False)
        stream.write(f"\n{model}\n{tabulate(rows, headers, tablefmt='simple')}\n")
        headers, rows = model_table(group, full=True)
        md += [f"## {model}", "", tabulate(rows, headers, tablefmt="github"), ""]
        md += _model_figures(group, directory)
    patterned = _pattern_layers(records)
    for model, place in dict.fromkeys([*layers, *patterned]):
        group = layers.get((model, place), [])
        headers, rows = layer_table(group + patterned.get((model, place), []))
        table = tabulate(rows, headers, tablefmt="simple")
        if not group:
            stream.write(f"\n{model} layer level ({place})\n{table}\n")
            md += [f"## {model}, layer level ({place})", "", tabulate(rows, headers, tablefmt="github"), ""]
            continue
        phrase, value = layer_break_even[(model, place)]
        stream.write(f"\n{model} layer level ({place}), break-even sparsity {phrase}\n{table}\n")
        figure = plot_layers(group, value, f"{model} layers, {place}: CSR vs dense GEMM", directory / f"layers-{slug(model)}-{slug(place)}.png")
        md += [f"## {model}, layer level ({place})", "", f"Break-even sparsity of CSR (time-weighted over all layers): {phrase}.", "",
               tabulate(rows, headers, tablefmt="github"), "", f"![{model} layer-level speedup]({figure.name})", ""]  # fmt: skip
    md += _notes(records)
    for text in findings:
        stream.write(f"\n{text}\n")
    path = directory / "report.md"
    path.write_text("\n".join(md) + "\n")
    stream.write(f"\nreport: {path}\n")
    return path


_QUANTIZERS = ("quant.bits", "quant.binary", "quant.cluster")


def _model_figures(records: list[dict[str, Any]], directory: Path) -> list[str]:
    """Figures of one model's cells, per target/threads/batch: theory vs measurement, Pareto fronts, bit-widths."""
    md: list[str] = []
    ok = [r for r in records if r["status"] == "ok"]
    for place in dict.fromkeys(where(r) for r in ok):
        here = [r for r in ok if where(r) == place]
        model, stem = here[0]["model"], f"{slug(here[0]['model'])}-{slug(place)}"
        compressed = [{**r, "variant": short_variant(r)} for r in here if r["compressor"] != "none"]
        if compressed:
            figure = plot_theory_vs_measured(compressed, f"{model}, {place}: theoretical vs measured speedup", directory / f"theory-{stem}.png")
            md += [f"![{model} theoretical vs measured]({figure.name})", ""]
        for cost, label in (("latency", "median latency (s)"), ("size", "smallest real encoding (bytes)")):
            points = accuracy_points(here, cost).get((model, place), [])
            if len(points) > 1:
                figure = plot_pareto(points, pareto_front(points), label, f"{model}, {place}: top-1 vs {cost}", directory / f"pareto-{cost}-{stem}.png")
                md += [f"![{model} top-1 vs {cost}]({figure.name})", ""]
        quantized = [r for r in here if r["compressor"] in _QUANTIZERS and r.get("size_packed_bytes") is not None]
        if quantized:
            figure = plot_bits(quantized, f"{model}: bytes and top-1 vs bits per weight", directory / f"bits-{stem}.png")
            md += [f"![{model} bit-width]({figure.name})", ""]
    return md


_ENCODINGS = ("size_dense_bytes", "size_gzip_bytes", "size_csr_bytes", "size_packed_bytes", "size_huffman_bytes")


def _stage_sizes(record: dict[str, Any]) -> str:
    """The bytes of every encoding after each stage of a chain, in stage order."""
    steps = []
    stages = zip(record["compressor_info"]["stages"], record["stage_sizes"], strict=True)
    for index, (stage, sizes) in enumerate(stages, 1):
        shown = [f"{key[5:-6]} {sizes[key] / _MB:.3f} MB" for key in _ENCODINGS if sizes.get(key) is not None]
        steps.append(f"after stage {index} ({stage['name']}): {', '.join(shown)}")
    return "; ".join(steps)


def _separable_ratios(record: dict[str, Any]) -> str:
    """Depthwise-separable swap: measured parameter and MAC ratios of the replaced convs against 1/O + 1/K^2."""
    info = record["compressor_info"]
    layers = info["layers"].values()
    formula = sum(layer["theoretical_ratio"] * layer["params_before"] for layer in layers) / info["params_before"]
    return (
        f"replaced convs: {info['convs_replaced']}; their params x{info['params_after'] / info['params_before']:.3f} and"
        f" MACs x{info['macs_after'] / info['macs_before']:.3f} against 1/O + 1/K^2 = {formula:.3f} (weighted by"
        f" params); whole-model speedup measured {record['speedup_median']:.2f}x of {record['theoretical_speedup']:.2f}x"
        " theoretical"
    )


def _notes(records: list[dict[str, Any]]) -> list[str]:
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
        if record["compressor"] == "arch.dsconv" and record["status"] == "ok":
            notes.append(f"- {record['model']} {variant(record)}: {_separable_ratios(record)}")
        if record.get("stage_sizes") and record["status"] == "ok":
            notes.append(f"- {record['model']} {variant(record)}: {_stage_sizes(record)}")
        if record.get("execution_notes"):
            notes.append(f"- {record['model']} {variant(record)}: {record['execution_notes']}")
        if record["status"] != "ok":
            notes.append(f"- {record['status']}: {record['model']} {variant(record)} on {where(record)}: {record.get('error')}")
    return notes + [""]
