"""How one pair is timed: warm-up, calibrated blocks, interleaved rounds until the stopping rule fires.

The loop knows nothing of engines or pair kinds: it times two callables of one input, whatever produced them; a
``stream`` pair's callables are timed over its list of real inputs instead (see ``stream``).
"""

from __future__ import annotations

import math
import time
from contextlib import AbstractContextManager
from typing import Any

from . import gemm_2_4, stream
from .clock import Model, time_block
from .engines import ENGINES
from .machine import machine_busy_s, own_cpu_s, thermal
from .operands import Operands
from .stats import summarize, verdict

__all__ = ["time_pair"]


def _warm_up(model: Model, x: Any, seconds: float) -> None:
    calls = 0
    start = time.perf_counter()
    while calls < 2 or time.perf_counter() - start < seconds:
        model(x)
        calls += 1


def _calibrate(model: Model, x: Any, block_min_s: float) -> int:
    """Iterations per block so that one block lasts at least ``block_min_s``.

    Timer resolution and per-block overhead are then negligible next to the block, whatever the model.
    """
    iters = 1
    while True:
        elapsed = time_block(model, x, iters)
        if elapsed >= block_min_s:
            return iters
        # Aim 20% past the target, but grow at most 10x per step in case one fast block was a fluke.
        wanted = math.ceil(iters * 1.2 * block_min_s / max(elapsed, 1e-9))
        iters = max(iters + 1, min(wanted, iters * 10))


def _rounds(
    operands: Operands, iters: tuple[int, int], pair: dict[str, Any]
) -> tuple[list[float], list[float], list[float], str]:
    """Interleaved timed rounds until the stopping rule fires.

    Returns:
        Per-iteration seconds of baseline and candidate and the speedup, one each per round, and the rule
        that stopped: ``ci``, ``budget`` or ``max_rounds``. Every rule waits for ``min_rounds``.
    """
    baseline, candidate, x = operands.baseline, operands.candidate, operands.x
    n_base, n_cand = iters
    baseline_s: list[float] = []
    candidate_s: list[float] = []
    speedups: list[float] = []
    used_s = 0.0
    while len(speedups) < pair["max_rounds"]:
        # Alternate A B / B A so that slow drift (frequency, thermal) does not favour either side.
        if len(speedups) % 2 == 0:
            t_base = time_block(baseline, x, n_base)
            t_cand = time_block(candidate, x, n_cand)
        else:
            t_cand = time_block(candidate, x, n_cand)
            t_base = time_block(baseline, x, n_base)
        used_s += t_base + t_cand
        baseline_s.append(t_base / n_base)
        candidate_s.append(t_cand / n_cand)
        speedups.append(baseline_s[-1] / candidate_s[-1])
        stopped_by = verdict(speedups, used_s, pair)
        if stopped_by is not None:
            return baseline_s, candidate_s, speedups, stopped_by
    return baseline_s, candidate_s, speedups, "max_rounds"


def _measure(operands: Operands, pair: dict[str, Any]) -> dict[str, Any]:
    """Warm-up, calibration and rounds of a pair timed on its one input."""
    _warm_up(operands.baseline, operands.x, pair["warmup_s"])
    _warm_up(operands.candidate, operands.x, pair["warmup_s"])
    iters = (
        _calibrate(operands.baseline, operands.x, pair["block_min_s"]),
        _calibrate(operands.candidate, operands.x, pair["block_min_s"]),
    )
    baseline_s, candidate_s, speedups, stopped_by = _rounds(operands, iters, pair)
    return {
        "iters_per_block": {"baseline": iters[0], "candidate": iters[1]},
        "baseline_s": baseline_s,
        "candidate_s": candidate_s,
        "speedups": speedups,
        "stopped_by": stopped_by,
    }


def _operands(pair: dict[str, Any], device: str, threads: int) -> AbstractContextManager[Operands]:
    if pair["kind"] == "gemm_2_4":
        return gemm_2_4.operands(pair, device, threads)
    return ENGINES[pair["engine"]].operands(pair, device, threads)


def time_pair(pair: dict[str, Any], device: str, threads: int) -> dict[str, Any]:
    """Time one validated pair; the result holds every round's samples, the summary, the machine's state and the
    facts its engine or kind reports."""
    thermal_before = thermal()
    busy_start = machine_busy_s()
    own_start = own_cpu_s()
    wall_start = time.perf_counter()
    with _operands(pair, device, threads) as operands:
        measured = stream.measure(operands, pair) if pair["kind"] == "stream" else _measure(operands, pair)
    wall_s = time.perf_counter() - wall_start
    busy_end = machine_busy_s()
    other_cpu_cores = None
    if busy_start is not None and busy_end is not None:
        other_s = (busy_end - busy_start) - (own_cpu_s() - own_start)
        # Clock-tick granularity can make a quiet machine read slightly negative.
        other_cpu_cores = max(0.0, other_s / wall_s)
    return {
        "id": pair["id"],
        **measured,
        "rounds": len(measured["speedups"]),
        "wall_s": wall_s,
        "other_cpu_cores": other_cpu_cores,
        "thermal_before": thermal_before,
        "thermal_after": thermal(),
        "summary": summarize(measured["baseline_s"], measured["candidate_s"], measured["speedups"]),
        **operands.facts,
    }
