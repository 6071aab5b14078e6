"""What the worker knows about its machine: the fingerprint ``info`` answers, the thermal state a pair records
before and after it, and the CPU time the rest of the machine used meanwhile (a *busy* cell)."""

from __future__ import annotations

import glob
import os
import platform
import shutil
import socket
import subprocess
from typing import Any

import torch

from .engines import ENGINES

__all__ = ["THROTTLE_BITS_NOW", "machine_busy_s", "machine_info", "own_cpu_s", "temperatures_c", "thermal"]

THROTTLE_BITS_NOW = 0x0F
"""Bits of a Raspberry Pi's ``vcgencmd get_throttled`` that describe now (under-voltage, frequency capped,
throttled, soft temperature limit); the higher bits say the same happened at some time since boot."""


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _cpu_model() -> str | None:
    cpuinfo = _read_text("/proc/cpuinfo") or ""
    # x86 says "model name"; a Raspberry Pi says "Model" (the board) and "Hardware" (the SoC).
    for key in ("model name", "Model", "Hardware"):
        for line in cpuinfo.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or None


def _memory_bytes() -> int | None:
    for line in (_read_text("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def _cpu_freq_mhz() -> float | None:
    khz = _read_text("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")
    return int(khz) / 1000.0 if khz and khz.strip().isdigit() else None


def _governor() -> str | None:
    text = _read_text("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    return text.strip() if text else None


def temperatures_c(root: str = "/sys/class/thermal") -> dict[str, float]:
    """Every readable thermal zone under ``root``, by its type (``cpu-thermal``, ``x86_pkg_temp``, ...), in C."""
    zones: dict[str, float] = {}
    for zone in sorted(glob.glob(os.path.join(root, "thermal_zone*"))):
        millidegrees = (_read_text(os.path.join(zone, "temp")) or "").strip()
        if not millidegrees.lstrip("-").isdigit():
            continue
        kind = (_read_text(os.path.join(zone, "type")) or os.path.basename(zone)).strip()
        name, suffix = kind, 1
        while name in zones:
            suffix += 1
            name = f"{kind}#{suffix}"
        zones[name] = int(millidegrees) / 1000.0
    return zones


def _throttled() -> int | None:
    """``vcgencmd get_throttled`` as an integer (Raspberry Pi firmware), None where there is no such tool."""
    tool = shutil.which("vcgencmd")
    if tool is None:
        return None
    try:
        done = subprocess.run([tool, "get_throttled"], capture_output=True, text=True, timeout=5, check=True)
        return int(done.stdout.strip().partition("=")[2], 16)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def thermal() -> dict[str, Any]:
    """The device's thermal state now: what a cell records before and after it, to flag throttled timings."""
    zones = temperatures_c()
    return {
        "temperature_c": max(zones.values()) if zones else None,
        "zones_c": zones,
        "throttled": _throttled(),
        "cpu_freq_mhz": _cpu_freq_mhz(),
    }


def _nvidia_driver() -> str | None:
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return None
    try:
        done = subprocess.run(
            [tool, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else None


def _cuda_info() -> dict[str, Any] | None:
    """The first GPU: name, compute capability, memory, CUDA runtime and driver; None without one."""
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {
        "name": props.name,
        "capability": f"{props.major}.{props.minor}",
        "memory_bytes": int(props.total_memory),
        "device_count": torch.cuda.device_count(),
        "runtime": torch.version.cuda,
        "driver": _nvidia_driver(),
    }


def machine_info() -> dict[str, Any]:
    """The fingerprint of this machine, with what each inference engine says about itself (versions, providers)."""
    cuda = _cuda_info()
    info: dict[str, Any] = {
        "arch": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "os": platform.platform(),
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "mkl": torch.backends.mkl.is_available(),
        "cuda_device": cuda["name"] if cuda else None,
        "cuda": cuda,
        "cpu_freq_mhz": _cpu_freq_mhz(),
        "governor": _governor(),
        "thermal": thermal(),
    }
    for engine in ENGINES.values():
        info.update(engine.info())
    return info


def machine_busy_s() -> float | None:
    """Busy CPU seconds of the whole machine since boot, summed over cores (None off Linux)."""
    text = _read_text("/proc/stat")
    if not text or not text.startswith("cpu "):
        return None
    # user nice system idle iowait irq softirq steal; guest time is already inside user.
    ticks = [int(v) for v in text.splitlines()[0].split()[1:9]]
    busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
    return busy / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU seconds this process used, to subtract from the machine's busy time."""
    t = os.times()
    return t.user + t.system
