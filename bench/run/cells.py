"""Time one cell on its target from what the host prepared for it (`bench.run.prepare`): a model cell's candidate
against its baseline on the cell's engine, or a layer sweep's GEMMs.

Returns the measured fields of the record; the runner adds identity, status and machine, and stores it.
"""

from __future__ import annotations

import math
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import compressors
from bench.config.run_config import TimingConfig
from bench.engines import EngineLimit
from bench.errors import one_line
from bench.models.references import Reference
from bench.records import ArtifactRefs, LayerResult, StreamLatency, Timing
from bench.run.layers import Gemm, gemm_2_4_pairs, gemm_pairs
from bench.run.matrix import SEMI_STRUCTURED, Cell
from bench.run.prepare import Prepared
from bench.store.artifacts import ArtifactFolder, digest
from targets import Target

__all__ = ["outcome_of", "LayerPairs", "layer_pairs", "measure_model_cell", "measure_layers_cell", "TimedArtifacts"]

# The worker's names of the two libraries behind torch's semi-structured tensors, as a report spells them.
_SEMI_STRUCTURED_BACKENDS = {"cusparselt": "cuSPARSELt", "cutlass": "CUTLASS"}


def outcome_of(cell: Cell, error: Exception) -> dict[str, Any]:
    """The fields of a cell whose host work or timing raised `error`: a skip for a known limit of the compressor or
    the engine (with the suite's reason), a failure with the exception's first line and traceback for anything
    else."""
    if isinstance(error, compressors.CompressorLimit):
        return {"status": "skipped", "error": f"{cell.compressor} cannot {error.action} {cell.model}: {error.reason}"}
    if isinstance(error, EngineLimit):
        return {"status": "skipped", "error": f"{cell.compressor} on {error.engine}: {error.reason}"}
    trace = "".join(traceback.format_exception(error))
    return {"status": "failed", "error": one_line(error), "traceback": trace}


def _pair(pair: dict[str, Any], timing: TimingConfig, budget_s: float | None = None) -> dict[str, Any]:
    settings = asdict(timing)
    if budget_s is not None:
        settings["budget_s"] = budget_s
    return {**pair, **settings, "seed": 0}


class TimedArtifacts:
    """The content of the files a run times: each file hashed once, and kept in `folder` when the run keeps them."""

    def __init__(self, folder: ArtifactFolder | None = None) -> None:
        self.folder = folder
        self._digests: dict[tuple[str, int, int], str] = {}

    def refs(self, pair: dict[str, Any]) -> ArtifactRefs:
        """The digests of an artifact pair's baseline and candidate (kept, where the run keeps them)."""
        baseline, candidate = (self._digest(Path(pair[side])) for side in ("baseline", "candidate"))
        return ArtifactRefs(baseline=baseline, candidate=candidate, input_shape=tuple(pair["input_shape"]))

    def _digest(self, path: Path) -> str:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in self._digests:
            self._digests[key] = digest(path)
            if self.folder is not None:
                self.folder.keep(path, self._digests[key])  # past the cap it is not kept: a re-measure says so
        return self._digests[key]


def measure_model_cell(
    cell: Cell, prepared: Prepared, target: Target, timing: TimingConfig, timed: TimedArtifacts
) -> dict[str, Any]:
    """Time the candidate prepared for the cell against its baseline on the target, beside the fields the host
    measured (size, MACs, accuracy) and the content of the two artifacts (`timed`)."""
    if prepared.skip is not None:
        return {"status": "skipped", "error": prepared.skip}
    fields = dict(prepared.fields)
    (result,) = target.time_pairs([_pair(prepared.pair, timing)], cell.threads)
    fields["timing"] = Timing.from_worker(result)
    if prepared.stream:
        fields["latency"] = StreamLatency.from_worker(result)
    else:
        fields["artifacts"] = timed.refs(prepared.pair)
    fields["engine_details"] = result.get("engine", {})
    return fields


@dataclass(frozen=True)
class LayerPairs:
    """What the host prepares for a layer sweep: each distinct GEMM (its layers, m x k x n, and the sparsity its
    sparse side really has) and the worker pair that times it, without timing settings."""

    gemms: tuple[tuple[tuple[str, ...], tuple[int, int, int], float], ...]
    pairs: tuple[dict[str, Any], ...]
    semi_structured: bool


def layer_pairs(cell: Cell, reference: Reference, workdir: Path) -> LayerPairs:
    """The host's part of a layer sweep: every distinct GEMM of the model, and the files the worker times for it.

    The sparse side is CSR at the cell's sparsity, or, for a ``pattern=2:4`` cell (CUDA targets), 2:4
    semi-structured fp16 against dense fp16 on shapes the worker pads for the semi-structured kernels.
    """
    example = reference.example_input(cell.batch)
    params = dict(cell.params)
    semi_structured = params.get("pattern") == SEMI_STRUCTURED
    if semi_structured:
        gemms, pairs = gemm_2_4_pairs(reference.model, example)
    else:
        gemms, pairs = gemm_pairs(reference.model, example, float(params["sparsity"]), workdir)
    shapes = tuple(
        (gemm.layers, (gemm.m, gemm.k, gemm.n), 0.5 if semi_structured else _csr_sparsity(gemm)) for gemm in gemms
    )
    return LayerPairs(shapes, tuple(pairs), semi_structured)


def measure_layers_cell(
    cell: Cell, prepared: LayerPairs, target: Target, timing: TimingConfig, budget_s: float
) -> dict[str, Any]:
    """Time every distinct GEMM the host prepared for the layer sweep, dense vs sparse, and aggregate
    count-weighted."""
    sparsity = float(dict(cell.params)["sparsity"])
    semi_structured = prepared.semi_structured
    results = target.time_pairs([_pair(p, timing, budget_s) for p in prepared.pairs], cell.threads)
    layers = tuple(
        LayerResult.from_timing(
            names, shape, shares, Timing.from_worker(result),
            tuple(result["gemm_padded"]) if semi_structured else None,
        )
        for (names, shape, shares), result in zip(prepared.gemms, results, strict=True)
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
