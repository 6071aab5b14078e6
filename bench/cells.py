"""Measure one cell: compress, recover, measure size/MACs/accuracy, time on the target against the baseline.

Returns the measured fields of the record; the runner adds identity, status and machine, and stores it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

import compressors
from bench.artifacts import save_torchscript
from bench.config import TimingConfig
from bench.layers import Gemm, gemm_2_4_pairs, gemm_pairs
from bench.matrix import SEMI_STRUCTURED, Cell
from bench.measure.accuracy import top1
from bench.measure.encodings import coded_sizes
from bench.measure.flops import macs_report
from bench.measure.size import dense_bytes, size_report
from bench.records import Accuracy, LayerResult, Macs, Sizes, Timing
from bench.references import References
from bench.training import Distillation, finetune
from compressors import Compressed
from targets import Target

__all__ = ["Candidates", "measure_model_cell", "measure_layers_cell"]

# The worker's names of the two libraries behind torch's semi-structured tensors, as a report spells them.
_SEMI_STRUCTURED_BACKENDS = {"cusparselt": "cuSPARSELt", "cutlass": "CUTLASS"}


def _pair(pair: dict[str, Any], timing: TimingConfig, budget_s: float | None = None) -> dict[str, Any]:
    settings = asdict(timing)
    if budget_s is not None:
        settings["budget_s"] = budget_s
    return {**pair, **settings, "seed": 0}


class RecoveredModels:
    """The last compressed-and-recovered model, reused by the next cell when only execution fields differ.

    The dense and the CSR cell of one sparsity run back to back (see `bench.config`) and must evaluate the
    very same weights; one entry keeps memory flat even for VGG-sized models.
    """

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._value: tuple[Compressed, float | None] | None = None

    def get(
        self, cell: Cell, config: compressors.CompressorConfig, references: References
    ) -> tuple[Compressed, float | None]:
        """The compressed model (fine-tuned if the cell asks) and its accuracy before recovery."""
        key = (cell.model, cell.batch, config.training_key(), cell.finetune_steps, cell.recovery)
        if key != self._key or self._value is None:
            reference = references.get(cell.model)
            example, calibration = reference.example_input(cell.batch), reference.calibration()
            compressed = config.apply(reference.model, example, calibration)
            before = None
            if reference.test is not None:
                before = top1(compressed.model, reference.test)
                if cell.finetune_steps and reference.train is not None:
                    finetune(
                        compressed.model,
                        reference.train,
                        cell.finetune_steps,
                        compressed.masks,
                        _distillation(cell, reference.model),
                    )
                    if compressed.codes:
                        # Training moves weights off their quantization grid; quantizing the recovered weights again
                        # keeps the stored codes and the evaluated model one and the same.
                        compressed = config.apply(compressed.model, example, calibration)
            self._key, self._value = key, (compressed, before)
        return self._value


@contextmanager
def _quantized_engine(engine: str | None) -> Iterator[None]:
    """Run int8 kernels on the engine they were packed for, as the timing worker does, then restore the default."""
    previous = torch.backends.quantized.engine
    if engine is not None:
        torch.backends.quantized.engine = engine
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous


def _coded_sizes(compressed: Compressed) -> dict[str, int]:
    if not compressed.codes:
        return {}
    return coded_sizes({k: v.detach() for k, v in compressed.model.state_dict().items()}, compressed.codes)


def _distillation(cell: Cell, teacher: torch.nn.Module) -> Distillation | None:
    recovery = dict(cell.recovery)
    if recovery.get("method") != "distill":
        return None
    return Distillation(teacher, temperature=recovery["temperature"], alpha=recovery["alpha"])


@dataclass(frozen=True)
class _Candidate:
    """A compressed model made ready to time: what was measured of it on the host, and its TorchScript file."""

    fields: dict[str, Any]
    artifact: Path
    quantized_engine: str | None


class Candidates:
    """The last candidate prepared, reused by the next cell that differs from it only in target or threads.

    A matrix on several targets runs each compressor on every target back to back; sizes, MACs, accuracy and
    the artifact do not depend on which device times it, so they are made once. A config resolved differently
    for another device (int8 "auto": qnnpack on ARM) is another candidate. One entry keeps memory and disk flat.
    """

    def __init__(self, directory: Path) -> None:
        """Start empty.

        Args:
            directory: Where the artifact lives between cells (the run's scratch folder).
        """
        self._directory = directory
        self._recovered = RecoveredModels()
        self._key: tuple[Any, ...] | None = None
        self._value: _Candidate | None = None
        self._made = 0

    def get(self, cell: Cell, config: compressors.CompressorConfig, references: References) -> _Candidate:
        """The candidate of `cell` compressed with `config` (already resolved for the cell's device)."""
        key = (
            cell.model,
            cell.batch,
            cell.finetune_steps,
            cell.recovery,
            cell.assets,
            config.name,
            sorted(config.to_dict().items()),
        )
        if key != self._key or self._value is None:
            if self._value is not None:
                self._value.artifact.unlink(missing_ok=True)
            self._key, self._value = None, None  # a failure below must not leave the old entry under a new key
            self._value = self._prepare(cell, config, references)
            self._key = key
        return self._value

    def _prepare(self, cell: Cell, config: compressors.CompressorConfig, references: References) -> _Candidate:
        """Compress (and recover) the cell's model, finalize it, and measure size, MACs and accuracy."""
        reference = references.get(cell.model)
        example = reference.example_input(cell.batch)
        compressed, accuracy_before = self._recovered.get(cell, config, references)
        sizes = {**size_report(compressed.model), **_coded_sizes(compressed)}
        macs = macs_report(compressed.model, example)
        fields: dict[str, Any] = {
            "compressor_info": compressed.info,
            "stage_sizes": tuple(
                Sizes.measured({**size_report(s.model), **_coded_sizes(s)}) for s in compressed.stages
            ),
            "baseline_dense_bytes": reference.size()["size_dense_bytes"],
            "macs": Macs(
                dense=macs["macs_dense"], effective=macs["macs_effective"], baseline=reference.macs_dense(cell.batch)
            ),
        }

        executable = config.finalize(compressed.model)
        fields.update(executed_as=executable.executed_as, execution_notes=executable.notes)
        top1_of_executable = None
        if reference.test is not None:
            # Accuracy of what runs: the CSR or int8 form is evaluated itself, not assumed equal to the trainable one.
            with _quantized_engine(executable.quantized_engine):
                top1_of_executable = top1(executable.model, reference.test)
        fields["accuracy"] = Accuracy(
            top1=top1_of_executable,
            baseline=reference.accuracy,
            before_recovery=accuracy_before,
            note=reference.accuracy_note,
            images=len(reference.test) if reference.test is not None else None,
        )

        self._made += 1
        artifact = save_torchscript(executable.model, example, self._directory / f"candidate-{self._made}.pt")
        sizes["size_stored_bytes"] = len(dense_bytes(executable.model.state_dict()))
        fields["sizes"] = Sizes.measured(sizes)
        fields["artifact_bytes"] = artifact.stat().st_size
        fields["quantized_engine"] = executable.quantized_engine
        return _Candidate(fields, artifact, executable.quantized_engine)


def measure_model_cell(
    cell: Cell, references: References, candidates: Candidates, target: Target, timing: TimingConfig
) -> dict[str, Any]:
    """Compress the cell's model, recover accuracy if asked, and measure size, MACs, accuracy and latency."""
    # Compressed for the device that runs it: int8 "auto" packs for qnnpack when the target is ARM.
    config = compressors.get(cell.compressor).from_dict(dict(cell.params)).for_device(target.machine_info()["arch"])
    reference = references.get(cell.model)
    try:
        config.check(reference.model)
    except ValueError as error:
        # The run's other models fit this compressor (the config checked that), this one does not.
        raise compressors.CompressorLimit("apply to", str(error)) from None
    candidate = candidates.get(cell, config, references)
    if candidate.quantized_engine is not None and target.device == "cuda":
        # torch.ao int8 modules only have CPU kernels: whatever ran on the GPU would not be int8.
        reason = f"int8 (torch.ao, {candidate.quantized_engine} engine) has no CUDA kernels; measured on CPU targets"
        return {"status": "skipped", "error": reason}
    fields = dict(candidate.fields)
    pair = {
        "id": cell.id,
        "baseline": str(references.artifact(cell.model, cell.batch)),
        "candidate": str(candidate.artifact),
        "input_shape": list(reference.example_input(cell.batch).shape),
        "quantized_engine": candidate.quantized_engine,
    }
    (result,) = target.time_pairs([_pair(pair, timing)], cell.threads)
    fields["timing"] = Timing.from_worker(result)
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
