"""The lottery study's points from its records: each way of spending one training budget (a ticket rewound to
init, a late rewind, plain fine-tuning, re-initialization, one-shot pruning) at each sparsity, over its seeds."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.records import ModelRecord

__all__ = ["ITERATIVE", "METHODS", "ONE_SHOT", "SeedPoint", "lottery_points"]

ITERATIVE = "prune.iterative"
ONE_SHOT = "prune.unstructured"
METHODS = ("ticket", "late rewind", "fine-tune", "reinit", "one-shot")
"""The series of the study, in legend and table order."""
_REWIND_METHOD = {"init": "ticket", "early": "late rewind", "none": "fine-tune", "reinit": "reinit"}


@dataclass(frozen=True)
class SeedPoint:
    """One configuration of one method at one budget, over its seeds.

    Attributes:
        sparsity: The achieved sparsity of the prunable weights (equal for every seed: the masks' counts are exact).
        top1: Top-1 of each seed, in seed order.
        seeds: The seeds.
        records: The records behind it (every place), for the latency table.
    """

    sparsity: float
    top1: tuple[float, ...]
    seeds: tuple[int, ...]
    records: tuple[ModelRecord, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.top1)

    @property
    def low(self) -> float:
        return min(self.top1)

    @property
    def high(self) -> float:
        return max(self.top1)

    @property
    def spread(self) -> float:
        """The seed spread: highest minus lowest top-1 (0 with one seed)."""
        return self.high - self.low


def _seed(record: ModelRecord) -> int:
    return int(record.recovery.get("seed", 0))


def _scope(record: ModelRecord) -> str:
    return str(record.params.get("scope", "-"))


def _method(record: ModelRecord) -> str | None:
    """The series a record belongs to, with the rewind step for late rewinding; None outside the study."""
    if record.compressor == ITERATIVE:
        rewind = str(record.params["rewind"])
        method = _REWIND_METHOD[rewind]
        return f"{method} (step {record.params['rewind_step']})" if rewind == "early" else method
    if record.compressor == ONE_SHOT and record.recovery.get("method", "finetune") == "finetune":
        return "one-shot"
    return None


def _order(method: str) -> int:
    return next(index for index, name in enumerate(METHODS) if method.startswith(name))


def _config_key(record: ModelRecord) -> tuple[Any, ...]:
    """What identifies one point: the training-relevant parameters (execution only chooses kernels)."""
    return tuple(sorted((key, value) for key, value in record.params.items() if key != "execution"))


def lottery_points(records: Sequence[ModelRecord]) -> dict[tuple[str, int, str], dict[str, list[SeedPoint]]]:
    """(model, budget in steps, scope) -> method -> its points by sparsity, from ok records with a top-1.

    Only budgets and scopes that `prune.iterative` cells have are kept; one-shot cells join them where their
    fine-tuning steps and scope match. Top-1 comes from each configuration's first place (target, engine,
    threads, batch), so a configuration timed at several places counts each seed once.
    """
    usable = [r for r in records if r.ok and _top1(r) is not None]
    studied = {(r.model, r.finetune_steps, _scope(r)) for r in usable if r.compressor == ITERATIVE}
    grouped: dict[tuple[str, int, str], dict[str, dict[tuple[Any, ...], list[ModelRecord]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for record in usable:
        method = _method(record)
        key = (record.model, record.finetune_steps, _scope(record))
        if method is None or key not in studied:
            continue
        grouped[key][method][_config_key(record)].append(record)
    out: dict[tuple[str, int, str], dict[str, list[SeedPoint]]] = {}
    for key, methods in grouped.items():
        out[key] = {}
        for method in sorted(methods, key=lambda m: (_order(m), m)):
            points = [_point(group) for group in methods[method].values()]
            out[key][method] = sorted(points, key=lambda p: p.sparsity)
    return out


def _top1(record: ModelRecord) -> float | None:
    return record.accuracy.top1 if record.accuracy is not None else None


def _point(group: list[ModelRecord]) -> SeedPoint:
    top1_by_seed: dict[int, float] = {}
    for record in group:
        value = _top1(record)
        if record.place == group[0].place and value is not None:
            top1_by_seed.setdefault(_seed(record), value)
    seeds = tuple(sorted(top1_by_seed))
    top1 = tuple(top1_by_seed[seed] for seed in seeds)
    sparsity = float(group[0].compressor_info["sparsity_achieved"])
    return SeedPoint(sparsity, top1, seeds, tuple(group))
