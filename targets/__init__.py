"""Where and how models are timed: targets (this CPU, later CUDA and SSH devices) and their worker."""

from targets.base import Target, TargetError
from targets.cpu import CpuTarget
from targets.registry import UnknownTargetError, create, target_names
from targets.worker import iqr, median, median_ci, summarize

__all__ = [
    "CpuTarget",
    "Target",
    "TargetError",
    "UnknownTargetError",
    "create",
    "iqr",
    "median",
    "median_ci",
    "summarize",
    "target_names",
]
