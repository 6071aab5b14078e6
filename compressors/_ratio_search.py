"""Search for the uniform channel-pruning ratio that meets a MAC budget."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

__all__ = ["Trial", "search_ratio"]

MAX_TRIALS = 12
TOLERANCE = 0.01


@dataclass
class Trial:
    """One pruned copy tried during the search.

    Attributes:
        ratio: The uniform channel ratio it was pruned at.
        model: The pruned copy.
        macs: Its MACs at the example input.
    """

    ratio: float
    model: nn.Module
    macs: int


def search_ratio(
    prune: Callable[[float], nn.Module],
    count_macs: Callable[[nn.Module], int],
    macs_dense: int,
    target: float,
    max_ratio: float,
) -> Trial:
    """Finds the ratio whose pruned model keeps `target` of the dense MACs.

    Bisects [0, max_ratio], but steps to the ratio `_predict` gives whenever that lies inside the bracket,
    which usually hits the target in one or two trials where plain bisection needs about seven. Stops within
    `TOLERANCE` or after `MAX_TRIALS` trials and returns the closest trial: channel counts are integers, so
    the exact target may be unreachable.

    Args:
        prune: Returns a fresh pruned copy at a ratio; MACs must not increase with the ratio.
        count_macs: MACs of a pruned copy, counted like `macs_dense`.
        macs_dense: MACs of the unpruned model.
        target: The fraction of `macs_dense` to keep.
        max_ratio: The largest ratio that is safe to try.

    Returns:
        The trial closest to the target.
    """

    def run(ratio: float) -> Trial:
        model = prune(ratio)
        return Trial(ratio, model, count_macs(model))

    def error(trial: Trial) -> float:
        return trial.macs / macs_dense - target

    low, high = 0.0, max_ratio
    trial = best = run(min(_predict(target, 0.0, 1.0), high))
    for _ in range(MAX_TRIALS - 1):
        if abs(error(trial)) <= TOLERANCE:
            break
        if error(trial) > 0:
            low = trial.ratio
        else:
            high = trial.ratio
        estimate = _predict(target, trial.ratio, trial.macs / macs_dense)
        trial = run(estimate if low < estimate < high else (low + high) / 2)
        if abs(error(trial)) < abs(error(best)):
            best = trial
    return best


def _predict(target: float, ratio: float, fraction: float) -> float:
    """Predicts the ratio that keeps `target` of the MACs, from a trial that kept `fraction` at `ratio`.

    A conv's MACs scale with in x out channels, so a uniform ratio r keeps about (1 - r)^2 of them.
    """
    return 1.0 - (1.0 - ratio) * math.sqrt(target / fraction) if fraction > 0 else ratio
