"""Knowledge distillation from the uncompressed model's logits (Hinton et al. 2015), blended with the labels."""

from __future__ import annotations

from typing import Any

from bench.models.training import Distillation
from bench.recovery.job import RecoveryJob

__all__ = ["distill"]


def distill(job: RecoveryJob) -> dict[str, Any]:
    job.fit(Distillation(job.teacher, temperature=job.settings["temperature"], alpha=job.settings["alpha"]))
    return {}
