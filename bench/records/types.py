"""The typed record of a measured cell, one type per kind, each part built once and read by attribute.

A record is what the store keeps and every report reads: SI units in the field names, raw samples kept,
`status` "ok", "failed" (with `error`) or "skipped" (with `error` saying why), kept apart as asv does.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from targets.worker.stats import bootstrap_ratio_ci, distribution, percentile

__all__ = [
    "STATUSES", "FLAGS", "ENCODINGS", "DEFAULT_ENGINE", "Timing", "LatencyStats", "StreamLatency", "Sizes", "Macs",
    "Accuracy", "LayerResult", "CellRecord", "ModelRecord", "LayersRecord", "Record",
]  # fmt: skip

STATUSES = ("ok", "failed", "skipped")
# Why a timing may be off, in the order tables and progress lines show them.
FLAGS = ("busy", "noisy", "throttled")

DEFAULT_ENGINE = "torchscript"
"""The inference engine of every cell measured before engines were a matrix axis, and of cells that name none."""
# The real encodings whose byte counts a record can hold, in the order tables list them.
ENCODINGS = ("dense", "gzip", "csr", "stored", "packed", "huffman")


def _positive(part: str, **values: float) -> None:
    """Times, counts and ratios a measurement cannot make zero or negative: a record holding one is damaged."""
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{part}.{name} must be > 0, got {value}")


@dataclass(frozen=True, kw_only=True)
class Timing:
    """Baseline against candidate, interleaved in one worker process, as the worker answered.

    `throttled` is None (and the thermal readings empty) for records from before the suite read them.

    `other_cpu_cores` is the CPU other processes used meanwhile; `busy`, `noisy` and `throttled` say why the
    numbers may be off and are decided when the answer arrives, so every reader sees the same flags.
    """

    baseline_median_s: float
    baseline_iqr_s: float
    median_s: float
    iqr_s: float
    speedup_median: float
    speedup_ci_low: float | None
    speedup_ci_high: float | None
    rounds: int
    stopped_by: str
    wall_s: float
    iters_per_block: Mapping[str, int]
    other_cpu_cores: float | None
    busy: bool
    noisy: bool
    throttled: bool | None
    throttle_reason: str | None
    cooldown_waited_s: float | None
    thermal_before: Mapping[str, Any]
    thermal_after: Mapping[str, Any]
    samples_baseline_s: tuple[float, ...]
    samples_s: tuple[float, ...]
    samples_speedup: tuple[float, ...]

    # Other processes using more than this many cores on average during a cell make it "busy": on a shared
    # 2-core machine its timings can be off by multiples.
    BUSY_CORES: ClassVar[float] = 0.25
    # torch.utils.benchmark warns when IQR/median exceeds 10%; the same threshold flags a noisy latency.
    NOISY_IQR: ClassVar[float] = 0.10

    def __post_init__(self) -> None:
        _positive("timing", baseline_median_s=self.baseline_median_s, median_s=self.median_s,
                  speedup_median=self.speedup_median, rounds=self.rounds)  # fmt: skip

    @classmethod
    def from_worker(cls, result: Mapping[str, Any]) -> Timing:
        """The timing of one pair from the worker's answer (`summary`, raw samples, thermal readings)."""
        summary = result["summary"]
        other = result.get("other_cpu_cores")
        noisy = any(
            summary[f"{side}_iqr_s"] > cls.NOISY_IQR * summary[f"{side}_median_s"] for side in ("baseline", "candidate")
        )
        return cls(
            baseline_median_s=summary["baseline_median_s"],
            baseline_iqr_s=summary["baseline_iqr_s"],
            median_s=summary["candidate_median_s"],
            iqr_s=summary["candidate_iqr_s"],
            speedup_median=summary["speedup_median"],
            speedup_ci_low=summary["speedup_ci_low"],
            speedup_ci_high=summary["speedup_ci_high"],
            rounds=result["rounds"],
            stopped_by=result["stopped_by"],
            wall_s=result["wall_s"],
            iters_per_block=result["iters_per_block"],
            other_cpu_cores=other,
            busy=other is not None and other > cls.BUSY_CORES,
            noisy=noisy,
            throttled=result["throttled"],
            throttle_reason=result["throttle_reason"],
            cooldown_waited_s=result["cooldown_waited_s"],
            thermal_before=result["thermal_before"],
            thermal_after=result["thermal_after"],
            samples_baseline_s=tuple(result["baseline_s"]),
            samples_s=tuple(result["candidate_s"]),
            samples_speedup=tuple(result["speedups"]),
        )

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(flag for flag in FLAGS if getattr(self, flag))


@dataclass(frozen=True, kw_only=True)
class LatencyStats:
    """One side's latency over a stream of inputs: the mean (what the stream costs per input) and percentiles
    over the inputs (what its slower inputs cost)."""

    mean_s: float
    p50_s: float
    p90_s: float
    p99_s: float

    def __post_init__(self) -> None:
        _positive("latency", mean_s=self.mean_s, p50_s=self.p50_s, p90_s=self.p90_s, p99_s=self.p99_s)


def _p99(xs: Sequence[float]) -> float:
    return percentile(xs, 99.0)


@dataclass(frozen=True, kw_only=True)
class StreamLatency:
    """Latency of a model whose work depends on its input, over a stream of real inputs each timed alone at batch
    1 (a worker ``stream`` pair), against the baseline on the same inputs.

    The samples are each input's median over the rounds, in the stream's order. The intervals are 95% percentile
    bootstraps over the inputs (paired, `BOOTSTRAP_RESAMPLES` draws, seeded), so they carry both the timing noise
    and how much the figure depends on which inputs the stream holds. The mean speedup says what the stream
    costs; the p99 speedup what its slowest inputs cost, which an early exit can make worse than the baseline's.
    """

    inputs: int
    baseline: LatencyStats
    candidate: LatencyStats
    speedup_mean: float
    speedup_mean_ci_low: float
    speedup_mean_ci_high: float
    speedup_p99: float
    speedup_p99_ci_low: float
    speedup_p99_ci_high: float
    samples_baseline_s: tuple[float, ...]
    samples_s: tuple[float, ...]

    BOOTSTRAP_RESAMPLES: ClassVar[int] = 2000

    def __post_init__(self) -> None:
        _positive("latency", inputs=self.inputs, speedup_mean=self.speedup_mean, speedup_p99=self.speedup_p99)
        if not len(self.samples_baseline_s) == len(self.samples_s) == self.inputs:
            raise ValueError(f"latency has {self.inputs} inputs but {len(self.samples_s)} samples")

    @classmethod
    def from_worker(cls, result: Mapping[str, Any]) -> StreamLatency:
        """The distribution from a stream pair's answer (``baseline_inputs_s``, ``candidate_inputs_s``)."""
        baseline = [float(x) for x in result["baseline_inputs_s"]]
        candidate = [float(x) for x in result["candidate_inputs_s"]]
        ours, theirs = distribution(candidate), distribution(baseline)
        resamples = cls.BOOTSTRAP_RESAMPLES
        mean_low, mean_high = bootstrap_ratio_ci(baseline, candidate, statistics.fmean, resamples)
        p99_low, p99_high = bootstrap_ratio_ci(baseline, candidate, _p99, resamples)
        return cls(
            inputs=len(candidate), baseline=LatencyStats(**theirs), candidate=LatencyStats(**ours),
            speedup_mean=theirs["mean_s"] / ours["mean_s"], speedup_mean_ci_low=mean_low,
            speedup_mean_ci_high=mean_high, speedup_p99=theirs["p99_s"] / ours["p99_s"], speedup_p99_ci_low=p99_low,
            speedup_p99_ci_high=p99_high, samples_baseline_s=tuple(baseline), samples_s=tuple(candidate),
        )  # fmt: skip


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
        _positive("macs", dense=self.dense, baseline=self.baseline)
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
class LayerResult:
    """One distinct GEMM shape of the layer sweep: dense against the sparse kernel, interleaved in one worker.

    Raw samples are not kept per GEMM (a sweep has dozens); `noisy` is None where a record predates it.
    """

    layers: tuple[str, ...]
    m: int
    k: int
    n: int
    sparsity: float
    dense_median_s: float
    sparse_median_s: float
    speedup_median: float
    speedup_ci_low: float | None
    speedup_ci_high: float | None
    rounds: int
    other_cpu_cores: float | None
    busy: bool
    throttled: bool | None
    throttle_reason: str | None
    noisy: bool | None = None
    gemm_padded: tuple[int, ...] | None = None

    @classmethod
    def from_timing(cls, layers: tuple[str, ...], shape: tuple[int, int, int], sparsity: float, timing: Timing,
                    gemm_padded: tuple[int, ...] | None = None) -> LayerResult:  # fmt: skip
        """One GEMM's result from the timing of its dense (baseline) and sparse (candidate) pair."""
        m, k, n = shape
        return cls(
            layers=layers, m=m, k=k, n=n, sparsity=sparsity, dense_median_s=timing.baseline_median_s,
            sparse_median_s=timing.median_s, speedup_median=timing.speedup_median,
            speedup_ci_low=timing.speedup_ci_low, speedup_ci_high=timing.speedup_ci_high, rounds=timing.rounds,
            other_cpu_cores=timing.other_cpu_cores, busy=timing.busy, throttled=timing.throttled,
            throttle_reason=timing.throttle_reason, noisy=timing.noisy, gemm_padded=gemm_padded,
        )  # fmt: skip

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(flag for flag in FLAGS if getattr(self, flag))

    @property
    def padded(self) -> bool:
        return self.gemm_padded is not None and self.gemm_padded != (self.m, self.k, self.n)


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
        _positive("cell", threads=self.threads, batch=self.batch)
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
            _positive("layers", dense_s=self.dense_s, sparse_s=self.sparse_s)

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
