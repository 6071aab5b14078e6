"""Run-to-run scatter, estimated from a comparison's own cells: the noise no within-run test can see.

The raw samples of a cell show the noise within its run. Two runs of one commit differ by more: each cell also
moves on its own between runs (where the process's memory landed, what other work shared the machine meanwhile).
On a 2-core VM shared with other work, two runs of one commit moved the latency of 4 of 20 cells by 5-10%, each
"significant" by its own samples. A fixed threshold cannot know how large that scatter is on a given machine.

Most cells of a comparison are unchanged, so the spread of their log ratios estimates it: the empirical null of
large-scale testing (Efron, 2004), made robust with the median absolute deviation around the median (x 1.4826,
the normal's sigma), which tolerates up to half the cells truly changing and a shift common to all of them (a
global slowdown still counts: a cell is judged against 1, the scatter only sets how far from 1 it must be). A
timing change is then called only beyond `max(threshold, e^(Z sigma) - 1)`; the comparison says when the scatter
raised the threshold, and by how much.

Only trusted pairs count (both ok, not flagged; for latency, one machine), and at least `MIN_CELLS` of them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from bench.records import ModelRecord, Record

__all__ = ["Scatter", "estimate_scatter", "trusted_pair", "MIN_CELLS", "Z"]

MIN_CELLS = 8
# Beyond 3 sigma: with a hundred unchanged cells, fewer than one false alarm per comparison from the scatter.
Z = 3.0
_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Scatter:
    """One timing metric's run-to-run scatter (sigma of the log ratio) over `cells` trusted pairs."""

    metric: str
    sigma: float
    cells: int

    def limit(self, threshold: float) -> float:
        """The relative change a cell must exceed: the threshold, or Z sigma of the scatter when that is larger."""
        return max(threshold, math.exp(Z * self.sigma) - 1.0)


def trusted_pair(base: Record, cand: Record) -> tuple[ModelRecord, ModelRecord] | None:
    """The pair as model records when both were measured ok and neither timing is flagged; else None."""
    if not (isinstance(base, ModelRecord) and isinstance(cand, ModelRecord) and base.ok and cand.ok):
        return None
    if base.timing is None or cand.timing is None or base.flags or cand.flags:
        return None
    return base, cand


def _log_ratios(pairs: Iterable[tuple[Record, Record]], metric: str) -> list[float]:
    ratios = []
    for base, cand in pairs:
        trusted = trusted_pair(base, cand)
        if trusted is None:
            continue
        b, c = trusted
        assert b.timing is not None and c.timing is not None
        if metric == "latency":
            if b.machine_id != c.machine_id:
                continue
            ratios.append(math.log(c.timing.median_s / b.timing.median_s))
        else:
            ratios.append(math.log(c.timing.speedup_median / b.timing.speedup_median))
    return ratios


def estimate_scatter(pairs: list[tuple[Record, Record]], metric: str) -> Scatter | None:
    """The run-to-run scatter of `metric` ("latency" or "speedup") over the trusted pairs; None with too few."""
    ratios = _log_ratios(pairs, metric)
    if len(ratios) < MIN_CELLS:
        return None
    centre = statistics.median(ratios)
    sigma = _MAD_TO_SIGMA * statistics.median(abs(r - centre) for r in ratios)
    return Scatter(metric, sigma, len(ratios))
