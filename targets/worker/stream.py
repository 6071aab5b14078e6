"""Pairs of kind ``stream``: baseline and candidate timed on every input of a stream of real inputs, at batch 1.

A model whose work depends on its input (an early exit) has no one latency: the time of a random tensor says
nothing about the time of a digit its first head is sure of. So the host ships real inputs (a tensor file,
``inputs``), and the worker times each one alone, one call per side and input, interleaved: in each round it walks
the stream in order, baseline then candidate on even positions of even rounds and the other way round otherwise,
so drift favours neither side. A round's figure per side is its mean over the stream (what the stream costs per
input), its speedup the ratio of those means; the rounds stop by the pair's usual rule (``stats.verdict``), or after
two rounds once twice the budget is spent. The result adds each input's median over the rounds, per side, from
which the host takes the distribution over inputs (mean, percentiles) and its intervals.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from .clock import Model, time_block
from .operands import Operands
from .stats import median, verdict

__all__ = ["measure"]


def _warm_up(model: Model, xs: list[Any], seconds: float) -> None:
    """Every input once (each path the model can take has run), then round the stream until ``seconds`` pass."""
    start = time.perf_counter()
    calls = 0
    while calls < len(xs) or time.perf_counter() - start < seconds:
        model(xs[calls % len(xs)])
        calls += 1


def measure(operands: Operands, pair: dict[str, Any]) -> dict[str, Any]:
    """Warm-up and interleaved rounds over the stream ``operands.x``; the per-round means and each input's
    median over the rounds, per side."""
    xs = operands.x
    _warm_up(operands.baseline, xs, pair["warmup_s"])
    _warm_up(operands.candidate, xs, pair["warmup_s"])
    per_input: tuple[list[list[float]], list[list[float]]] = ([[] for _ in xs], [[] for _ in xs])
    baseline_s: list[float] = []
    candidate_s: list[float] = []
    speedups: list[float] = []
    used_s = 0.0
    stopped_by = "max_rounds"
    while len(speedups) < pair["max_rounds"]:
        for i, x in enumerate(xs):
            if (len(speedups) + i) % 2 == 0:
                t_base = time_block(operands.baseline, x, 1)
                t_cand = time_block(operands.candidate, x, 1)
            else:
                t_cand = time_block(operands.candidate, x, 1)
                t_base = time_block(operands.baseline, x, 1)
            per_input[0][i].append(t_base)
            per_input[1][i].append(t_cand)
            used_s += t_base + t_cand
        baseline_s.append(statistics.fmean(times[-1] for times in per_input[0]))
        candidate_s.append(statistics.fmean(times[-1] for times in per_input[1]))
        speedups.append(baseline_s[-1] / candidate_s[-1])
        reason = verdict(speedups, used_s, pair)
        if reason is None and len(speedups) >= 2 and used_s >= 2 * pair["budget_s"]:
            # A round times the whole stream, so min_rounds of a slow model can outlast the time the host waits
            # for an answer (twice the budget): past it, two rounds (two samples per input and side) suffice.
            reason = "budget"
        if reason is not None:
            stopped_by = reason
            break
    return {
        "iters_per_block": {"baseline": 1, "candidate": 1},
        "baseline_s": baseline_s,
        "candidate_s": candidate_s,
        "speedups": speedups,
        "stopped_by": stopped_by,
        "inputs": len(xs),
        "baseline_inputs_s": [median(times) for times in per_input[0]],
        "candidate_inputs_s": [median(times) for times in per_input[1]],
    }
