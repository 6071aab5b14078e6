"""Plain fine-tuning: the compressed model trains on the labels for the cell's budget, masks kept."""

from __future__ import annotations

from typing import Any

from bench.recovery.job import RecoveryJob

__all__ = ["finetune"]


def finetune(job: RecoveryJob) -> dict[str, Any]:
    job.fit()
    return {}
