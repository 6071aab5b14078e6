"""Where and how models are timed: this machine's CPU and GPU and remote devices over SSH, all through one worker."""

from targets._process import describe_exit
from targets.base import Target, TargetError
from targets.cpu import CpuTarget
from targets.cuda import CudaTarget
from targets.registry import BUILTIN_TARGETS, KINDS, LOCAL_KINDS, TargetSpec, create, spec_from_table
from targets.settings import SettingsError
from targets.ssh import SshTarget
from targets.worker.stats import iqr, median, median_ci, summarize

__all__ = [
    "BUILTIN_TARGETS",
    "KINDS",
    "LOCAL_KINDS",
    "CpuTarget",
    "CudaTarget",
    "SettingsError",
    "SshTarget",
    "Target",
    "TargetError",
    "TargetSpec",
    "create",
    "describe_exit",
    "iqr",
    "median",
    "median_ci",
    "spec_from_table",
    "summarize",
]
