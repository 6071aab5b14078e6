"""The timing parts of a record: baseline against candidate as the worker answered, a stream's latency
distribution, and one GEMM of a layer sweep; each checks once that a measurement made no impossible number."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from targets.worker.stats import bootstrap_ratio_ci, distribution, percentile

__all__ = ["FLAGS", "LatencyStats", "LayerResult", "StreamLatency", "Timing", "require_positive"]

# Why a timing may be off, in the order tables and progress lines show them.
FLAGS = ("busy", "noisy", "throttled")


def require_positive(part: str, **values: float) -> None:
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
        require_positive("timing", baseline_median_s=self.baseline_median_s, median_s=self.median_s,
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
        require_positive("latency", mean_s=self.mean_s, p50_s=self.p50_s, p90_s=self.p90_s, p99_s=self.p99_s)


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
        require_positive("latency", inputs=self.inputs, speedup_mean=self.speedup_mean, speedup_p99=self.speedup_p99)
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
