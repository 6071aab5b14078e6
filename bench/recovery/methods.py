"""The table of recovery methods: how a compressed model spends its training budget after compression.

A recovery method is a function of a `RecoveryJob` (`bench.recovery.job`) that trains the job's model in place and
returns the facts a record keeps of it (the steps it really trained, where it started from), one module each;
`METHOD_PARAMS` names the settings of `[recovery]` each method reads, and only those are part of a cell's identity.
A new method is one module and one entry in each table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.recovery.distill import distill
from bench.recovery.distill_features import feature_distillation, relational_distillation
from bench.recovery.finetune import finetune
from bench.recovery.job import RecoveryJob
from bench.recovery.scratch import scratch_b, scratch_e

__all__ = ["METHOD_PARAMS", "RECOVERY_METHODS", "recover"]


RECOVERY_METHODS: dict[str, Callable[[RecoveryJob], dict[str, Any]]] = {
    "finetune": finetune,
    "distill": distill,
    "feature": feature_distillation,
    "relational": relational_distillation,
    "scratch-e": scratch_e,
    "scratch-b": scratch_b,
}
"""Method name -> the function that recovers a job's model, returning the facts the record keeps of it."""

METHOD_PARAMS: dict[str, tuple[str, ...]] = {
    "finetune": (),
    "distill": ("temperature", "alpha"),
    "feature": ("hint_weight",),
    "relational": ("distance_weight", "angle_weight"),
    "scratch-e": (),
    "scratch-b": (),
}
"""Method name -> the `[recovery]` settings it reads, which identify its cells beside the method."""


def recover(job: RecoveryJob) -> dict[str, Any]:
    """Run the job's method; the facts it returns, with the method named."""
    method = str(job.settings.get("method", "finetune"))
    return {"method": method, **RECOVERY_METHODS[method](job)}
