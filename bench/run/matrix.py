"""RunConfig -> the list of cells to measure. Pure: the same config always gives the same cells and ids."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import compressors
from bench.config.run_config import RunConfig
from bench.models.registry import resolve_model
from bench.records import DEFAULT_ENGINE

__all__ = ["Cell", "expand", "LAYER_COMPRESSOR", "SEMI_STRUCTURED"]

LAYER_COMPRESSOR = "prune.unstructured"
SEMI_STRUCTURED = "2:4"
"""The ``pattern`` of the extra layer cell on CUDA targets: 2:4 semi-structured sparsity, which GPUs since
Ampere run on sparse tensor cores, so the sweep also shows a case where weight sparsity does pay."""


@dataclass(frozen=True)
class Cell:
    """One measurement: a model, compressed one way, run by one engine on one target, at one thread count and batch.

    `kind` is "model" for whole-network cells and "layers" for the layer-level GEMM sweep of a model at one
    sparsity. The id is a digest of the canonical JSON, so it is stable across runs and machines: it is what
    makes resume work. The default engine is left out of the digest, so cells measured before engines were an
    axis keep their ids (their stored results are reused and compared with new ones).
    """

    kind: str
    model: str
    compressor: str
    params: tuple[tuple[str, Any], ...]
    target: str
    threads: int
    batch: int
    finetune_steps: int
    assets: tuple[tuple[str, str], ...] = ()
    recovery: tuple[tuple[str, Any], ...] = ()
    engine: str = DEFAULT_ENGINE

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "compressor": self.compressor,
            "params": dict(self.params),
            "target": self.target,
            "threads": self.threads,
            "batch": self.batch,
            "finetune_steps": self.finetune_steps,
            "assets": dict(self.assets),
            "recovery": dict(self.recovery),
            "engine": self.engine,
        }

    # Derived once, when the cell is made: every step of a run looks a cell up by id and shows its label.
    id: str = field(init=False, repr=False, compare=False)
    variant: str = field(init=False, repr=False, compare=False)
    label: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        identity = self.to_json()
        if self.engine == DEFAULT_ENGINE:
            del identity["engine"]  # the default engine is left out of the digest (see the class)
        canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        shown = " ".join(f"{key}={value}" for key, value in self.params if value is not None)
        variant = f"{'layers ' if self.kind == 'layers' else ''}{self.compressor} {shown}".strip()
        engine = "" if self.engine == DEFAULT_ENGINE else f" {self.engine}"
        label = f"{self.model} | {variant} | {self.target}{engine} t={self.threads} b={self.batch}"
        object.__setattr__(self, "id", hashlib.sha256(canonical.encode()).hexdigest()[:16])
        object.__setattr__(self, "variant", variant)  # the compressor with its parameters, as tables show it
        object.__setattr__(self, "label", label)


def expand(config: RunConfig) -> list[Cell]:
    """Every cell of the matrix: model cells first (grouped by model), then the layer-level sweep.

    Model cells are timed on each engine; layer cells time torch's own GEMMs, so they have the default engine.

    A layer-sweep model gets, besides its CSR sparsities, one 2:4 cell per CUDA target (at 50%, the only
    sparsity the pattern has).
    """
    cells: list[Cell] = []
    for model in config.models:
        trains = resolve_model(model).dataset is not None
        assets = _assets(config, model)
        for compressor in config.compressors:
            steps = config.finetune_steps if trains and compressor.recoverable else 0
            params = tuple(sorted(compressor.to_dict().items()))
            for recovery in _recoveries(config, compressor, steps):
                for engine in config.engines:
                    for target in config.targets:
                        for threads in config.threads:
                            for batch in config.batch:
                                cells.append(
                                    Cell(
                                        "model", model, compressor.name, params, target, threads, batch, steps,
                                        assets, recovery, engine,
                                    )
                                )  # fmt: skip
    for model in config.layers.models:
        if model not in config.models:
            continue
        for sparsity in config.layers.sparsities:
            params = (("sparsity", sparsity),)
            for target in config.targets:
                for threads in config.threads:
                    for batch in config.batch:
                        cells.append(
                            Cell(
                                "layers",
                                model,
                                LAYER_COMPRESSOR,
                                params,
                                target,
                                threads,
                                batch,
                                0,
                                _assets(config, model),
                            )
                        )
        semi_structured = (("pattern", SEMI_STRUCTURED), ("sparsity", 0.5))
        for target in config.targets:
            if config.target_specs[target].kind != "cuda":
                continue
            for threads in config.threads:
                for batch in config.batch:
                    cells.append(
                        Cell(
                            "layers",
                            model,
                            LAYER_COMPRESSOR,
                            semi_structured,
                            target,
                            threads,
                            batch,
                            0,
                            _assets(config, model),
                        )
                    )
    return cells


def _recoveries(
    config: RunConfig, compressor: compressors.CompressorConfig, steps: int
) -> list[tuple[tuple[str, Any], ...]]:
    """The recovery of each cell of a compressor: every method at every seed, only the seeds for a compressor that
    trains as it compresses, and none without a training budget."""
    if not steps:
        return [()]
    points = config.recovery.seed_points() if compressor.trains else config.recovery.points()
    return [tuple(sorted(point.items())) for point in points]


def _assets(config: RunConfig, model: str) -> tuple[tuple[str, str], ...]:
    assets = config.assets.get(model)
    return tuple(sorted(assets.digests().items())) if assets else ()
