"""Measure one cell: compress, recover, measure size/MACs/accuracy, time on the target against the baseline
on the cell's engine.

Returns the measured fields of the record; the runner adds identity, status and machine, and stores it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import compressors
from bench import engines
from bench.config.run_config import TimingConfig
from bench.engines import EngineLimit
from bench.models.references import References
from bench.records import LayerResult, Record, StreamLatency, Timing
from bench.run.exit_facts import check_branches, stream_file
from bench.run.layers import Gemm, gemm_2_4_pairs, gemm_pairs
from bench.run.matrix import SEMI_STRUCTURED, Cell
from bench.run.prepare import Preparation
from targets import Target

__all__ = ["measure_model_cell", "measure_layers_cell", "machine_limit", "skip_holds"]

# The worker's names of the two libraries behind torch's semi-structured tensors, as a report spells them.
_SEMI_STRUCTURED_BACKENDS = {"cusparselt": "cuSPARSELt", "cutlass": "CUTLASS"}


def _pair(pair: dict[str, Any], timing: TimingConfig, budget_s: float | None = None) -> dict[str, Any]:
    settings = asdict(timing)
    if budget_s is not None:
        settings["budget_s"] = budget_s
    return {**pair, **settings, "seed": 0}


def machine_limit(cell: Cell, machine: Mapping[str, Any], device: str) -> str | None:
    """Why the machine that `machine` describes cannot run the cell on `device`, or None when it can.

    The skips a machine decides (an engine not installed on the device, no execution provider for its GPU) are
    all decided here, from the machine's facts: every other skip follows from the code and the config (a
    compressor that does not apply, an engine that cannot export the candidate) and comes again on every run.
    That is what lets a stored skip say where it came from without a field of its own (see `skip_holds`).
    """
    if cell.kind != "model":
        return None  # a layer sweep times torch's GEMMs in the worker itself: no engine to install
    return engines.get(cell.engine).device_unavailable(machine, device)


def skip_holds(cell: Cell, stored: Record, machine: Mapping[str, Any], device: str) -> bool:
    """Whether the stored skip of `cell` answers it on this machine (`machine`, `device`) without measuring again.

    A skip measured on a machine that could run the cell came from the code and the config, so measuring again
    would only find it again (an ONNX export of CSR fails the same way every time): it holds, like an ok record,
    until `--force`, while this machine can run the cell too. A skip the machine decided is measured again: the
    device may have the engine by now, as a user who installs it expects.
    """
    return machine_limit(cell, stored.machine, device) is None and machine_limit(cell, machine, device) is None


def measure_model_cell(
    cell: Cell, references: References, preparation: Preparation, target: Target, timing: TimingConfig
) -> dict[str, Any]:
    """Compress the cell's model, recover accuracy if asked, and measure size, MACs, accuracy and latency.

    Raises:
        CompressorLimit: The compressor does not apply to this model.
        EngineLimit: The cell's engine cannot run this candidate, or the target's device cannot run the engine.
    """
    # Compressed for the device that runs it: int8 "auto" packs for qnnpack when the target is ARM.
    machine = target.machine_info()
    config = compressors.get(cell.compressor).from_dict(dict(cell.params)).for_device(machine["arch"])
    reference = references.get(cell.model)
    try:
        config.check(reference.model)
    except ValueError as error:
        # The run's other models fit this compressor (the config checked that), this one does not.
        raise compressors.CompressorLimit("apply to", str(error)) from None
    engine = engines.get(cell.engine)
    missing = machine_limit(cell, machine, target.device)
    if missing is not None:
        raise EngineLimit(engine.name, f"target '{cell.target}': {missing}")
    if config.input_dependent and cell.batch != 1:
        # One batched graph cannot leave early for some samples and not others: it would run every exit for all.
        raise compressors.CompressorLimit("time", f"at batch {cell.batch}: its work is decided per input, so it is"
                                          " timed at batch 1 only")  # fmt: skip
    artifact = preparation.artifact(cell, config, engine)
    if artifact.exported.quantized_engine is not None and target.device == "cuda":
        # torch.ao int8 modules only have CPU kernels: whatever ran on the GPU would not be int8.
        engine_name = artifact.exported.quantized_engine
        reason = f"int8 (torch.ao, {engine_name} engine) has no CUDA kernels; measured on CPU targets"
        return {"status": "skipped", "error": reason}
    fields = dict(artifact.fields)
    pair = {
        "id": cell.id,
        "engine": engine.name,
        "baseline": str(references.artifact(cell.model, cell.batch, engine)),
        "candidate": str(artifact.exported.path),
        "input_shape": list(reference.example_input(cell.batch).shape),
        "quantized_engine": artifact.exported.quantized_engine,
    }
    if config.input_dependent:
        check_branches(artifact.exported, engine.name)
        assert reference.test is not None, "a compressor that trains has the model's data"
        del pair["input_shape"]
        pair.update(kind="stream", inputs=str(stream_file(cell.model, reference.test, references.artifact_dir)))
    (result,) = target.time_pairs([_pair(pair, timing)], cell.threads)
    fields["timing"] = Timing.from_worker(result)
    if config.input_dependent:
        fields["latency"] = StreamLatency.from_worker(result)
    fields["engine_details"] = result.get("engine", {})
    return fields


def measure_layers_cell(
    cell: Cell, references: References, target: Target, timing: TimingConfig, budget_s: float, workdir: Path
) -> dict[str, Any]:
    """Time every distinct GEMM of the model, dense vs sparse, and aggregate count-weighted.

    The sparse side is CSR at the cell's sparsity, or, for a ``pattern=2:4`` cell (CUDA targets), 2:4
    semi-structured fp16 against dense fp16 on shapes the worker pads for the semi-structured kernels.
    """
    reference = references.get(cell.model)
    example = reference.example_input(cell.batch)
    params = dict(cell.params)
    sparsity = float(params["sparsity"])
    semi_structured = params.get("pattern") == SEMI_STRUCTURED
    if semi_structured:
        gemms, pairs = gemm_2_4_pairs(reference.model, example)
    else:
        gemms, pairs = gemm_pairs(reference.model, example, sparsity, workdir)
    results = target.time_pairs([_pair(p, timing, budget_s) for p in pairs], cell.threads)
    layers = tuple(
        LayerResult.from_timing(
            gemm.layers, (gemm.m, gemm.k, gemm.n), 0.5 if semi_structured else _csr_sparsity(gemm),
            Timing.from_worker(result), tuple(result["gemm_padded"]) if semi_structured else None,
        )
        for gemm, result in zip(gemms, results, strict=True)
    )  # fmt: skip
    fields: dict[str, Any] = {
        "executed_as": "dense GEMM (torch.mm) vs sparse CSR GEMM (torch.sparse.mm)",
        "layers": layers,
        "dense_s": sum(len(layer.layers) * layer.dense_median_s for layer in layers),
        "sparse_s": sum(len(layer.layers) * layer.sparse_median_s for layer in layers),
        "theoretical_speedup": 1 / (1 - sparsity) if sparsity < 1 else math.inf,
        "thermal_before": results[0]["thermal_before"],
        "thermal_after": results[-1]["thermal_after"],
        "cooldown_waited_s": results[0]["cooldown_waited_s"],
    }
    if semi_structured:
        fields.update(_semi_structured_execution(layers, results))
    return fields


def _csr_sparsity(gemm: Gemm) -> float:
    """The sparsity the CSR side really has (pruning ties can leave it a little off the cell's)."""
    nonzero = int((gemm.weight != 0).sum())
    return 1 - nonzero / gemm.weight.numel()


def _semi_structured_execution(layers: tuple[LayerResult, ...], results: list[dict[str, Any]]) -> dict[str, Any]:
    """What a 2:4 cell ran: the backend that did the sparse GEMMs, and which shapes were padded to run at all."""
    backends = sorted({_SEMI_STRUCTURED_BACKENDS.get(r["backend"], r["backend"]) for r in results})
    padded = [
        f"{layer.m}x{layer.k}x{layer.n} -> {'x'.join(str(d) for d in layer.gemm_padded or ())}"
        for layer in layers
        if layer.padded
    ]
    notes = "GEMMs (m x k x n) with seeded random fp16 weights pruned 2:4 along k, not the model's weights"
    if padded:
        notes += f"; padded for the semi-structured kernels, dense and sparse alike: {', '.join(padded)}"
    return {
        "executed_as": f"dense fp16 GEMM (torch.mm) vs 2:4 semi-structured fp16 GEMM ({', '.join(backends)})",
        "execution_notes": notes,
        "semi_structured_backend": ", ".join(backends),
    }
