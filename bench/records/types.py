"""The typed record of a measured cell, one type per kind, each part built once and read by attribute.

A record is what the store keeps and every report reads: SI units in the field names, raw samples kept,
`status` "ok", "failed" (with `error`) or "skipped" (with `error` saying why), kept apart as asv does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bench.records.timing import FLAGS, LayerResult, StreamLatency, Timing, require_positive

__all__ = [
    "STATUSES", "ENCODINGS", "DEFAULT_ENGINE", "Sizes", "Macs", "Accuracy", "ArtifactRefs", "CellRecord", "ModelRecord",
    "LayersRecord", "Record",
]  # fmt: skip

STATUSES = ("ok", "failed", "skipped")

DEFAULT_ENGINE = "torchscript"
"""The inference engine of every cell measured before engines were a matrix axis, and of cells that name none."""
# The real encodings whose byte counts a record can hold, in the order tables list them.
ENCODINGS = ("dense", "gzip", "csr", "stored", "packed", "huffman")


@dataclass(frozen=True, kw_only=True)
class Sizes:
    """Parameters and the byte length of every real encoding of one model's weights (None: not applicable)."""

    params_total: int
    params_nonzero: int
    dense_bytes: int
    csr_bytes: int
    gzip_bytes: int
    stored_bytes: int | None = None
    packed_bytes: int | None = None
    huffman_bytes: int | None = None

    @classmethod
    def measured(cls, fields: Mapping[str, int | None]) -> Sizes:
        """Sizes from `bench.measure`'s fields (`params_total`, `size_dense_bytes`, ...); absent ones are None."""

        def required(key: str) -> int:
            value = fields.get(key)
            if value is None:
                raise ValueError(f"the size measurement has no '{key}'")
            return value

        return cls(
            params_total=required("params_total"), params_nonzero=required("params_nonzero"),
            dense_bytes=required("size_dense_bytes"), csr_bytes=required("size_csr_bytes"),
            gzip_bytes=required("size_gzip_bytes"), stored_bytes=fields.get("size_stored_bytes"),
            packed_bytes=fields.get("size_packed_bytes"), huffman_bytes=fields.get("size_huffman_bytes"),
        )  # fmt: skip

    def encodings(self) -> dict[str, int]:
        """Encoding name -> bytes, for every encoding measured, in table order."""
        found = {name: getattr(self, f"{name}_bytes") for name in ENCODINGS}
        return {name: value for name, value in found.items() if value is not None}

    def smallest(self) -> tuple[str, int]:
        """The smallest real encoding (each decodes back to the model that ran) and its bytes."""
        return min(self.encodings().items(), key=lambda item: item[1])


@dataclass(frozen=True, kw_only=True)
class Macs:
    """Multiply-accumulates of the compressed model, dense and effective (non-zero weights), and the baseline's."""

    dense: int
    effective: int
    baseline: int

    def __post_init__(self) -> None:
        require_positive("macs", dense=self.dense, baseline=self.baseline)
        if self.effective < 0:
            raise ValueError(f"macs.effective must be >= 0, got {self.effective}")

    @property
    def theoretical_speedup(self) -> float:
        return self.baseline / self.effective if self.effective else float("inf")


@dataclass(frozen=True, kw_only=True)
class Accuracy:
    """Top-1 on a real held-out set, or None with `note` saying why there is none (no weights).

    `images` is the size of the held-out set, which gives top-1 its binomial standard error when two runs are
    compared (None where unknown).
    """

    top1: float | None
    baseline: float | None
    before_recovery: float | None
    note: str | None
    images: int | None = None

    @property
    def standard_error(self) -> float | None:
        """The binomial standard error of `top1` (a fraction), sqrt(p (1 - p) / n); None without both."""
        if self.top1 is None or not self.images:
            return None
        return (self.top1 * (1.0 - self.top1) / self.images) ** 0.5


@dataclass(frozen=True, kw_only=True)
class ArtifactRefs:
    """The two files the worker timed for a model cell, by content: SHA-256 of the baseline's and the candidate's
    artifact, and the input shape they were timed on.

    Where the files were kept (`bench.store.artifacts`), a later comparison finds them by these digests and times the
    two runs' artifacts against each other in one session (`bench.compare.remeasure`).
    """

    baseline: str
    candidate: str
    input_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("baseline", "candidate"):
            digest = getattr(self, name)
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"artifacts.{name} must be a SHA-256 hex digest, got {digest!r}")


@dataclass(frozen=True, kw_only=True)
class CellRecord:
    """What every record has: the cell it answers, where it ran, and how it ended."""

    schema_version: int
    cell_id: str
    model: str
    compressor: str
    params: Mapping[str, Any]
    target: str
    threads: int
    batch: int
    finetune_steps: int = 0
    assets: Mapping[str, str] = field(default_factory=dict)
    recovery: Mapping[str, Any] = field(default_factory=dict)
    engine: str = DEFAULT_ENGINE
    status: str
    error: str | None = None
    traceback: str | None = None
    machine_id: str
    machine: Mapping[str, Any] = field(default_factory=dict)
    elapsed_s: float | None = None

    kind: ClassVar[str]

    def __post_init__(self) -> None:
        require_positive("cell", threads=self.threads, batch=self.batch)
        if self.status not in STATUSES:
            raise ValueError(f"status '{self.status}' is not one of {', '.join(STATUSES)}")
        if self.status == "ok" and self.error is not None:
            raise ValueError("an ok record has no error")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def place(self) -> str:
        """Where the record was measured: target, engine, threads and batch, as columns and plot titles show it.

        The default engine goes unnamed, so the places of runs from before engines were an axis read as they did.
        """
        engine = "" if self.engine == DEFAULT_ENGINE else f" {self.engine}"
        return f"{self.target}{engine} t={self.threads} b={self.batch}"

    @property
    def flags(self) -> tuple[str, ...]:
        """Why the record's timing may be off (busy, noisy, throttled); none for a record without one."""
        return ()


@dataclass(frozen=True, kw_only=True)
class ModelRecord(CellRecord):
    """A whole model, compressed, measured for size, MACs and accuracy on the host and timed on the target.

    A failed or skipped record has none of the measured parts.
    """

    kind: ClassVar[str] = "model"
    compressor_info: Mapping[str, Any] = field(default_factory=dict)
    executed_as: str | None = None
    execution_notes: str = ""
    quantized_engine: str | None = None
    # What the worker reported of the engine that ran the pair: its version and settings (ONNX Runtime's graph
    # optimization level, execution providers and threads); empty for records from before engines were an axis.
    engine_details: Mapping[str, Any] = field(default_factory=dict)
    sizes: Sizes | None = None
    baseline_dense_bytes: int | None = None
    artifact_bytes: int | None = None
    stage_sizes: tuple[Sizes, ...] = ()
    macs: Macs | None = None
    accuracy: Accuracy | None = None
    timing: Timing | None = None
    # For a compressor whose work depends on the input (`input_dependent`): latency over a stream of real inputs,
    # whose per-round means `timing` also holds; None for every other cell and for older records.
    latency: StreamLatency | None = None
    # The content of the timed artifacts; None for stream cells, records from before it was kept, and non-ok cells.
    artifacts: ArtifactRefs | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.status == "ok" and (self.sizes is None or self.macs is None or self.timing is None):
            raise ValueError("an ok model record has sizes, MACs and a timing")

    @property
    def flags(self) -> tuple[str, ...]:
        return self.timing.flags if self.timing is not None else ()

    @property
    def efficiency(self) -> float | None:
        """Measured / theoretical speedup: how much of the MACs' promise the hardware realized."""
        if self.timing is None or self.macs is None:
            return None
        return self.timing.speedup_median / self.macs.theoretical_speedup


@dataclass(frozen=True, kw_only=True)
class LayersRecord(CellRecord):
    """Every distinct GEMM of a model at one sparsity, dense against a sparse kernel, and their count-weighted sum.

    The aggregate has no interval: each GEMM has its own, and a sum of medians does not give one.
    """

    kind: ClassVar[str] = "layers"
    executed_as: str | None = None
    execution_notes: str = ""
    layers: tuple[LayerResult, ...] = ()
    dense_s: float | None = None
    sparse_s: float | None = None
    theoretical_speedup: float | None = None
    semi_structured_backend: str | None = None
    thermal_before: Mapping[str, Any] = field(default_factory=dict)
    thermal_after: Mapping[str, Any] = field(default_factory=dict)
    cooldown_waited_s: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.status == "ok" and (not self.layers or self.dense_s is None or self.sparse_s is None):
            raise ValueError("an ok layers record has its GEMMs and their totals")
        if self.dense_s is not None and self.sparse_s is not None:
            require_positive("layers", dense_s=self.dense_s, sparse_s=self.sparse_s)

    @property
    def speedup_median(self) -> float | None:
        if self.dense_s is None or self.sparse_s is None:
            return None
        return self.dense_s / self.sparse_s

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(flag for flag in FLAGS if any(flag in layer.flags for layer in self.layers))

    @property
    def gemms_padded(self) -> int:
        """How many GEMM shapes the worker padded to run the semi-structured kernels at all."""
        return sum(1 for layer in self.layers if layer.padded)

    @property
    def pattern(self) -> str | None:
        """The sparsity pattern of a semi-structured cell (2:4), None for CSR at the cell's sparsity."""
        pattern = self.params.get("pattern")
        return str(pattern) if pattern is not None else None


Record = ModelRecord | LayersRecord
