"""A stored run as pytest-benchmark's JSON, so its tools and the services built on them read the suite's timings.

`pytest-benchmark compare FILE...` prints and compares such files, and github-action-benchmark's "pytest" tool
charts them (it reads each benchmark's `fullname` and `stats.ops`, `stats.stddev`, `stats.mean`, `stats.rounds`).
One benchmark per ok cell with raw samples: the candidate's per-call seconds of each interleaved round, which is
what pytest-benchmark's `stats.data` holds too (each round's time divided by its iterations), so every statistic
is computed from the samples the same way pytest-benchmark computes it. The suite's own figures (the speedup
and its interval, bytes, top-1, flags) travel in `extra_info`.

pytest-benchmark is a development tool here, not a dependency of the suite: `sample_stats` restates its
`Stats` with the standard library, and a test checks the two agree on the same samples.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from typing import Any

from bench.analysis.series import variant
from bench.records import ModelRecord, Record
from bench.store.database import Run

__all__ = ["FORMAT_VERSION", "PROJECT", "sample_stats", "benchmark_name", "pytest_benchmark_json"]

FORMAT_VERSION = "5.3.1"
"""The pytest-benchmark release whose JSON layout this writes (its `version` field)."""
PROJECT = "compression-bench"


def sample_stats(data: Sequence[float]) -> dict[str, Any]:
    """pytest-benchmark's statistics of per-iteration seconds, field for field as its `Stats.as_dict()` gives them.

    Quartiles follow its choice (Wikipedia's methods 2 and 3, by the parity of the count), outliers are counted
    beyond one standard deviation and beyond Tukey's 1.5 IQR fences, and `ops` is rounds per second of samples.
    """
    if not data:
        raise ValueError("statistics of no samples")
    ordered = sorted(data)
    rounds = len(data)
    total = sum(data)
    mean = statistics.mean(data)
    stddev = statistics.stdev(data) if rounds > 1 else 0
    q1, q3 = _quartiles(ordered)
    iqr = q3 - q1
    low_fence, high_fence = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    stddev_outliers = sum(1 for value in data if value < mean - stddev or value > mean + stddev)
    iqr_outliers = sum(1 for value in data if value < low_fence or value > high_fence)
    return {
        "min": ordered[0],
        "max": ordered[-1],
        "mean": mean,
        "stddev": stddev,
        "rounds": rounds,
        "median": statistics.median(data),
        "iqr": iqr,
        "q1": q1,
        "q3": q3,
        "iqr_outliers": iqr_outliers,
        "stddev_outliers": stddev_outliers,
        "outliers": f"{stddev_outliers};{iqr_outliers}",
        "ld15iqr": data[0] if rounds == 1 else ordered[bisect_left(ordered, low_fence)],
        "hd15iqr": data[0] if rounds == 1 else ordered[bisect_right(ordered, high_fence) - 1],
        "ops": rounds / total if total else 0,
        "total": total,
    }


def _quartiles(ordered: Sequence[float]) -> tuple[float, float]:
    rounds = len(ordered)
    if rounds == 1:
        return ordered[0], ordered[0]
    if rounds % 2 == 0:
        half = rounds // 2
        return statistics.median(ordered[:half]), statistics.median(ordered[half:])
    n, remainder = divmod(rounds, 4)
    if remainder == 1:
        return 0.25 * ordered[n - 1] + 0.75 * ordered[n], 0.75 * ordered[3 * n] + 0.25 * ordered[3 * n + 1]
    return 0.75 * ordered[n] + 0.25 * ordered[n + 1], 0.25 * ordered[3 * n + 1] + 0.75 * ordered[3 * n + 2]


def benchmark_name(record: Record) -> str:
    """`model[variant|place]`: stable across runs of the same cell, so compare tools pair them by name."""
    return f"{record.model}[{_param(record)}]"


def _param(record: Record) -> str:
    steps = f" steps={record.finetune_steps}" if record.finetune_steps else ""
    return f"{variant(record)}{steps}|{record.place}"


def pytest_benchmark_json(run: Run, records: list[Record]) -> tuple[dict[str, Any], int]:
    """The document pytest-benchmark writes with `--benchmark-json`, and how many records had no timing to give.

    Failed and skipped cells, and layer sweeps (which keep no raw samples per GEMM), have no benchmark.
    """
    timed = [r for r in records if isinstance(r, ModelRecord) and r.ok and r.timing and r.timing.samples_s]
    names = [benchmark_name(r) for r in timed]
    # Two cells of one run can only share a name through parameter values that print alike (0.5 and "0.5").
    repeated = {name for name in names if names.count(name) > 1}
    benchmarks = [
        _benchmark(run, r, f"{name} #{r.cell_id}" if name in repeated else name)
        for r, name in zip(timed, names, strict=True)
    ]
    document = {
        "machine_info": _machine_info(run, timed),
        "commit_info": _commit_info(run),
        "benchmarks": benchmarks,
        "datetime": run.finished_at or run.started_at,
        "version": FORMAT_VERSION,
    }
    return document, len(records) - len(timed)


def _benchmark(run: Run, record: ModelRecord, name: str) -> dict[str, Any]:
    assert record.timing is not None and record.sizes is not None
    timing = record.timing
    stats = sample_stats(timing.samples_s)
    extra = {
        "run_id": run.run_id,
        "cell_id": record.cell_id,
        "machine_id": record.machine_id,
        "executed_as": record.executed_as,
        "speedup_median": timing.speedup_median,
        "speedup_ci_low": timing.speedup_ci_low,
        "speedup_ci_high": timing.speedup_ci_high,
        "baseline_median_s": timing.baseline_median_s,
        "theoretical_speedup": record.macs.theoretical_speedup if record.macs else None,
        "bytes": record.sizes.encodings(),
        "params_nonzero": record.sizes.params_nonzero,
        "top1": record.accuracy.top1 if record.accuracy else None,
        "flags": list(record.flags),
        "stopped_by": timing.stopped_by,
    }
    return {
        "group": f"{record.model} {record.place}",
        "name": name,
        "fullname": f"{record.kind}::{name}",
        "params": {
            **record.params,
            "model": record.model,
            "compressor": record.compressor,
            "target": record.target,
            "threads": record.threads,
            "batch": record.batch,
        },
        "param": _param(record),
        "extra_info": _finite(extra),
        "options": _options(run),
        "stats": {
            **stats,
            "data": list(timing.samples_s),
            "iterations": timing.iters_per_block.get("candidate", 1),
        },
    }


def _options(run: Run) -> dict[str, Any]:
    """The run's timing protocol under pytest-benchmark's option names where one means the same."""
    timing = run.config.get("timing")
    timing = timing if isinstance(timing, Mapping) else {}
    return {
        "timer": "perf_counter per block (CUDA events on a GPU), baseline and candidate interleaved",
        "min_rounds": timing.get("min_rounds"),
        "max_rounds": timing.get("max_rounds"),
        "min_time": timing.get("block_min_s"),
        "max_time": timing.get("budget_s"),
        "warmup": timing.get("warmup_s") is not None,
        "warmup_s": timing.get("warmup_s"),
        "ci_rel": timing.get("ci_rel"),
    }


def _machine_info(run: Run, records: list[ModelRecord]) -> dict[str, Any]:
    """pytest-benchmark's machine facts from the run's host, with the CPU of the machine that timed.

    Where the run timed on several machines (a local and an SSH target), `cpu` is the host's and every timing
    machine is listed under `machines`; each benchmark names its own in `extra_info.machine_id`.
    """
    host = run.host
    machines = {r.machine_id: dict(r.machine) for r in records}
    timer = next(iter(machines.values())) if len(machines) == 1 else {}
    return {
        "node": host.get("hostname"),
        "processor": timer.get("cpu_model", ""),
        "machine": host.get("arch"),
        "python_version": host.get("python"),
        "platform": host.get("os"),
        "cpu": {
            "brand_raw": timer.get("cpu_model"),
            "arch_string_raw": timer.get("arch", host.get("arch")),
            "count": timer.get("cpu_count", host.get("cpu_count_logical")),
        },
        "machines": machines,
    }


def _commit_info(run: Run) -> dict[str, Any]:
    """pytest-benchmark's commit facts from what the run recorded; what it did not record is None."""
    return {
        "id": run.commit.get("commit") or "unversioned",
        "time": None,
        "author_time": None,
        "dirty": run.commit.get("dirty"),
        "project": PROJECT,
        "branch": None,
    }


def _finite(value: Any) -> Any:
    """`value` with infinite and NaN numbers as null: JSON has no such numbers, and JavaScript readers refuse them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
