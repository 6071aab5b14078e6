"""Typed records made by hand for report, analysis and store tests: every field a real run fills, at values
the test chooses."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from bench.records import (
    DEFAULT_ENGINE,
    SCHEMA_VERSION,
    Accuracy,
    LayerResult,
    LayersRecord,
    Macs,
    ModelRecord,
    Sizes,
    Timing,
    machine_id,
)
from bench.run.matrix import LAYER_COMPRESSOR, Cell

MACHINE = {
    "arch": "x86_64",
    "cpu_model": "Test CPU",
    "cpu_count": 2,
    "memory_bytes": 1,
    "hostname": "h",
    "torch": "2",
    "cuda_device": None,
}
_THERMAL = {"temperature_c": None, "zones_c": {}, "throttled": None, "cpu_freq_mhz": None}


def timing(
    speedup: float = 1.0, low: float | None = None, high: float | None = None, median_s: float = 1e-3,
    samples: tuple[float, ...] | None = None, **flags: Any,
) -> Timing:  # fmt: skip
    """A worker's answer for one pair: `median_s` for the candidate, the baseline `speedup` times slower; the
    candidate's raw `samples` default to three around `median_s`."""
    samples = samples or (median_s * 0.99, median_s, median_s * 1.01)
    return Timing(
        baseline_median_s=median_s * speedup, baseline_iqr_s=median_s * speedup * 0.01, median_s=median_s,
        iqr_s=median_s * 0.01, speedup_median=speedup, speedup_ci_low=low, speedup_ci_high=high, rounds=3,
        stopped_by="ci", wall_s=0.1, iters_per_block={"baseline": 10, "candidate": 10},
        other_cpu_cores=flags.get("other_cpu_cores", 0.0), busy=flags.get("busy", False),
        noisy=flags.get("noisy", False), throttled=flags.get("throttled", False),
        throttle_reason=flags.get("throttle_reason"), cooldown_waited_s=None, thermal_before=_THERMAL,
        thermal_after=_THERMAL, samples_baseline_s=tuple(s * speedup for s in samples), samples_s=samples,
        samples_speedup=(speedup,) * 3,
    )  # fmt: skip


def sampled_timing(
    samples_s: Sequence[float], samples_speedup: Sequence[float] | None = None,
    reference_s: Sequence[float] | None = None, **flags: Any,
) -> Timing:  # fmt: skip
    """A timing with the given raw samples: the candidate's latencies and the per-round speedups (1.0 when None);
    the medians are the samples' own. The reference's samples are `reference_s`, or the candidate's times the
    speedup (a reference that moves with the candidate)."""
    speedups = tuple(samples_speedup) if samples_speedup is not None else (1.0,) * len(samples_s)
    made = timing(statistics.median(speedups), median_s=statistics.median(samples_s), **flags)
    baseline = tuple(reference_s) if reference_s is not None else tuple(s * made.speedup_median for s in samples_s)
    return dataclasses.replace(
        made, samples_s=tuple(samples_s), samples_speedup=speedups, samples_baseline_s=baseline,
        baseline_median_s=statistics.median(baseline),
    )  # fmt: skip


def _identity(cell: Cell, machine: Mapping[str, Any], status: str, error: str | None) -> dict[str, Any]:
    identity = {
        **cell.to_json(),
        "schema_version": SCHEMA_VERSION,
        "cell_id": cell.id,
        "machine_id": machine_id(machine),
    }
    identity.pop("kind")
    if status != "ok" and error is None:
        error = "RuntimeError: boom"
    return {**identity, "machine": dict(machine), "status": status, "error": error, "elapsed_s": 0.5}


def model_record(
    compressor: str = "none", params: Mapping[str, Any] | None = None, *, model: str = "m", target: str = "cpu",
    status: str = "ok", error: str | None = None, machine: Mapping[str, Any] = MACHINE, theoretical: float = 1.0,
    speedup: float = 1.0, top1: float | None = None, sizes: Sizes | None = None, finetune_steps: int = 0,
    engine: str = DEFAULT_ENGINE, threads: int = 1, batch: int = 1, median_s: float = 1e-3, **fields: Any,
) -> ModelRecord:  # fmt: skip
    """A model record run by `engine`; an ok one gets sizes, MACs removed by `theoretical` and a timing whose
    candidate takes `median_s` and whose baseline (same engine) takes `speedup` times as long."""
    params_items = tuple(sorted((params or {}).items()))
    cell = Cell("model", model, compressor, params_items, target, threads, batch, finetune_steps, engine=engine)
    identity = _identity(cell, machine, status, error)
    if status != "ok":
        return ModelRecord(**identity, **fields)
    parts: dict[str, Any] = {
        "executed_as": "dense",
        "sizes": sizes
        or Sizes(params_total=1000, params_nonzero=1000, dense_bytes=4000, csr_bytes=8000, gzip_bytes=3600),
        "macs": Macs(dense=1000, effective=round(1000 / theoretical), baseline=1000),
        "accuracy": Accuracy(
            top1=top1,
            baseline=top1,
            before_recovery=top1,
            note=None if top1 else "n/a (no weights)",
            images=1000 if top1 is not None else None,
        ),
        "timing": timing(speedup, median_s=median_s),
    }
    return ModelRecord(**identity, **{**parts, **fields})


def layers_record(
    target: str, params: Mapping[str, Any], speedups: list[float], machine: Mapping[str, Any] = MACHINE,
    padded: tuple[int, ...] | None = None, **fields: Any,
) -> LayersRecord:  # fmt: skip
    """A finished layer-sweep record with one 16x9x64 and one 64x512x1 GEMM at the given per-GEMM speedups;
    `padded` is what the worker padded the first shape to."""
    cell = Cell("layers", "digits_cnn", LAYER_COMPRESSOR, tuple(sorted(params.items())), target, 1, 1, 0)
    shapes = [(16, 9, 64), (64, 512, 1)]
    layers = tuple(
        LayerResult.from_timing(
            (f"layer{i}",), shape, float(params["sparsity"]), timing(s, 0.95 * s, 1.05 * s, 1e-4 / s),
            (padded if i == 0 else shape) if padded else None,
        )
        for i, (shape, s) in enumerate(zip(shapes, speedups, strict=True))
    )  # fmt: skip
    parts = {
        "layers": layers, "dense_s": sum(layer.dense_median_s for layer in layers),
        "sparse_s": sum(layer.sparse_median_s for layer in layers),
        "theoretical_speedup": 1 / (1 - float(params["sparsity"])),
        "executed_as": "dense GEMM (torch.mm) vs sparse CSR GEMM (torch.sparse.mm)",
    }  # fmt: skip
    return LayersRecord(**_identity(cell, machine, "ok", None), **{**parts, **fields})
