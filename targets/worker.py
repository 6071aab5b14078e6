"""Timing worker: the single file that runs on a measurement device.

Run as ``python worker.py``. It is a persistent process that reads one JSON request per line on stdin and
writes one JSON response per line on stdout, so that the slow ``import torch`` is paid once per device
rather than once per measurement.

Requests:
    ``{"op": "info"}``: the machine fingerprint, ``{"ok": true, "machine": {...}}``.
    ``{"op": "time", "threads": 1, "device": "cpu", "pairs": [PAIR, ...]}``: interleaved baseline/candidate
    timing, ``{"ok": true, "results": [...]}``, each result with the device's thermal state before and after.
    ``device`` is ``"cpu"`` (the default) or ``"cuda"``. See ``PAIR_DEFAULTS`` for the optional fields of a
    PAIR; its ``kind`` says what is timed and which fields are required besides ``id``:

    - ``"artifacts"`` (the default): two TorchScript files, ``baseline`` and ``candidate``, on a random input
      of ``input_shape``.
    - ``"gemm_2_4"`` (``device: "cuda"``, compute capability >= 8.0): ``gemm: [m, k, n]``. The worker builds a
      seeded random fp16 weight (m x k) pruned 2:4 along k (in every 4 consecutive weights the 2 largest
      magnitudes are kept) and an fp16 input (k x n), and times ``torch.mm`` with the dense weight (baseline)
      against ``torch.mm`` with the weight converted by ``torch.sparse.to_sparse_semi_structured``
      (candidate). TorchScript cannot hold that tensor subclass, hence no artifacts. m, k and n are first
      padded up to the multiples the semi-structured kernels accept; the result adds ``gemm`` (as asked),
      ``gemm_padded`` (as timed) and ``backend`` (``cusparselt`` or ``cutlass``). A GPU below 8.0, a failed
      conversion, or a sparse product that disagrees with the dense one fails the request; no number is made up.
    ``{"op": "cooldown", "max_s": 60, "below_c": 55}``: wait until the hottest thermal zone is below
    ``below_c`` (or, with ``below_c`` null or no sensor, for ``max_s`` flat), at most ``max_s``;
    ``{"ok": true, "waited_s": ..., "thermal": {...}}``.
    ``{"op": "quit"}`` or end of input: exit 0.

A request that fails is answered ``{"ok": false, "error": "Type: message", "traceback": "..."}`` and the
worker keeps serving.

The file depends only on the standard library and torch, and imports nothing from the project, because it
is copied as-is to remote devices that may run an older torch (2.9) and Python (3.9). The statistics
functions are plain stdlib so that the host imports them from here and both sides agree on the numbers.
"""

from __future__ import annotations

import glob
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any, Callable, TextIO

import torch

__all__ = ["DEVICES", "PAIR_DEFAULTS", "THROTTLE_BITS_NOW", "iqr", "main", "median", "median_ci", "summarize"]

PAIR_DEFAULTS: dict[str, Any] = {
    "warmup_s": 0.2,
    "block_min_s": 0.01,
    "budget_s": 5.0,
    "min_rounds": 6,
    "max_rounds": 400,
    "ci_rel": 0.02,
    "seed": 0,
    "quantized_engine": None,
    "kind": "artifacts",
}
"""Optional PAIR fields and their values when the host leaves them out."""

_PAIR_KINDS: dict[str, tuple[str, ...]] = {
    "artifacts": ("baseline", "candidate", "input_shape"),
    "gemm_2_4": ("gemm",),
}
"""What a PAIR of each kind must give besides ``id``."""

_GEMM_2_4_MULTIPLES = (32, 64, 8)
"""(m, k, n) multiples that both fp16 semi-structured backends accept: CUTLASS wants the sparse weight in
multiples of (32, 64) and cuSPARSELt of (16, 16); both pad the dense operand to multiples of 8 inside every
call, which would put a copy into the sparse side's time only, so n is padded up front as well."""

_GEMM_2_4_MIN_CAPABILITY = (8, 0)
"""Sparse tensor cores, which the semi-structured kernels need, arrived with Ampere (sm_80)."""

_GEMM_2_4_MAX_REL_ERROR = 1e-2
"""Largest relative (Frobenius) difference accepted between the sparse and the dense product, both fp16 with
fp32 accumulation; a mis-packed weight gives differences of order 1."""

DEVICES = ("cpu", "cuda")
"""Where a ``time`` request runs its models."""

THROTTLE_BITS_NOW = 0x0F
"""Bits of a Raspberry Pi's ``vcgencmd get_throttled`` that describe now (under-voltage, frequency capped,
throttled, soft temperature limit); the higher bits say the same happened at some time since boot."""


def median(xs: Sequence[float]) -> float:
    """Median of a non-empty sample.

    Args:
        xs: The sample.

    Returns:
        The middle value (mean of the two middle values for an even count).

    Raises:
        ValueError: If ``xs`` is empty.
    """
    if not xs:
        raise ValueError("median of an empty sample")
    return float(statistics.median(xs))


def iqr(xs: Sequence[float]) -> float:
    """Interquartile range, the spread statistic that a few slow outliers cannot inflate.

    Quartiles use linear interpolation between order statistics (``statistics.quantiles`` with the
    inclusive method, the same as numpy's default), so ``iqr([1, 2, 3, 4, 5]) == 2``.

    Args:
        xs: A non-empty sample.

    Returns:
        Third quartile minus first quartile; 0.0 for a single value.

    Raises:
        ValueError: If ``xs`` is empty.
    """
    if not xs:
        raise ValueError("iqr of an empty sample")
    if len(xs) == 1:
        return 0.0
    q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return float(q3 - q1)


def median_ci(xs: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval for the median.

    Timings are skewed and heavy-tailed (interference only ever adds time), so a normal-theory interval
    would be wrong. The interval is ``(x_(j), x_(n+1-j))`` of the sorted sample, where the rank ``j`` is the
    largest one whose exact binomial coverage, ``1 - 2 * P(Binomial(n, 1/2) < j)``, is at least
    ``confidence``. When even ``(min, max)`` covers less (n <= 5 at 95%), ``(min, max)`` is returned: the
    widest interval the sample can give, with less than the asked coverage.

    Args:
        xs: A non-empty sample.
        confidence: Coverage in (0, 1).

    Returns:
        ``(low, high)``; ``low <= median(xs) <= high``.

    Raises:
        ValueError: If ``xs`` is empty or ``confidence`` is outside (0, 1).
    """
    if not xs:
        raise ValueError("median_ci of an empty sample")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    ordered = sorted(xs)
    n = len(ordered)
    alpha_half = (1.0 - confidence) / 2.0
    total = 2**n
    rank = 0
    below = 0  # integer count of outcomes with Binomial(n, 1/2) < rank + 1, exact for any n
    term = 1  # comb(n, rank), kept by recurrence
    while rank < n // 2:
        below += term
        if below / total > alpha_half:
            break
        rank += 1
        term = term * (n - rank + 1) // rank
    if rank == 0:
        return float(ordered[0]), float(ordered[-1])
    return float(ordered[rank - 1]), float(ordered[n - rank])


def _ci_rel_halfwidth(speedups: Sequence[float]) -> float:
    speedup = median(speedups)
    low, high = median_ci(speedups)
    return max(speedup - low, high - speedup) / speedup


def summarize(
    baseline_s: Sequence[float], candidate_s: Sequence[float], speedups: Sequence[float]
) -> dict[str, float]:
    """Summary statistics of one timed pair.

    ``ci_rel_halfwidth`` is the larger distance from the median speedup to an end of its 95% interval,
    relative to the median: the interval is asymmetric for skewed samples, and "within +-2%" should hold
    on both sides.

    Args:
        baseline_s: Per-iteration seconds of the baseline, one per round.
        candidate_s: Per-iteration seconds of the candidate, one per round.
        speedups: Per-round baseline/candidate ratios.

    Returns:
        Medians and IQRs of both timings, and the median speedup with its 95% interval.
    """
    speedup = median(speedups)
    low, high = median_ci(speedups)
    return {
        "baseline_median_s": median(baseline_s),
        "baseline_iqr_s": iqr(baseline_s),
        "candidate_median_s": median(candidate_s),
        "candidate_iqr_s": iqr(candidate_s),
        "speedup_median": speedup,
        "speedup_ci_low": low,
        "speedup_ci_high": high,
        "ci_rel_halfwidth": _ci_rel_halfwidth(speedups),
    }


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


def _temperatures_c(root: str = "/sys/class/thermal") -> dict[str, float]:
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


def _thermal() -> dict[str, Any]:
    """The device's thermal state now: what a cell records before and after it, to flag throttled timings."""
    zones = _temperatures_c()
    return {
        "temperature_c": max(zones.values()) if zones else None,
        "zones_c": zones,
        "throttled": _throttled(),
        "cpu_freq_mhz": _cpu_freq_mhz(),
    }


def _onnxruntime_version() -> str | None:
    try:
        import onnxruntime  # noqa: PLC0415 - optional on the device; only its version is reported
    except ImportError:
        return None
    return str(onnxruntime.__version__)


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


def _machine_info() -> dict[str, Any]:
    cuda = _cuda_info()
    return {
        "arch": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "os": platform.platform(),
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "quantized_engines": list(torch.backends.quantized.supported_engines),
        "mkl": torch.backends.mkl.is_available(),
        "onnxruntime": _onnxruntime_version(),
        "cuda_device": cuda["name"] if cuda else None,
        "cuda": cuda,
        "cpu_freq_mhz": _cpu_freq_mhz(),
        "governor": _governor(),
        "thermal": _thermal(),
    }


def _machine_busy_s() -> float | None:
    """Busy CPU seconds of the whole machine since boot, summed over cores (None off Linux)."""
    text = _read_text("/proc/stat")
    if not text or not text.startswith("cpu "):
        return None
    # user nice system idle iowait irq softirq steal; guest time is already inside user.
    ticks = [int(v) for v in text.splitlines()[0].split()[1:9]]
    busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
    return busy / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def _validate_pair(raw: Any, device: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValueError(f"a pair must be a JSON object, got {type(raw).__name__}")
    kind = raw.get("kind", PAIR_DEFAULTS["kind"])
    if kind not in _PAIR_KINDS:
        raise ValueError(f"pair kind must be one of {', '.join(_PAIR_KINDS)}, got {kind!r}")
    required = ("id",) + _PAIR_KINDS[kind]
    missing = [key for key in required if key not in raw]
    if missing:
        raise ValueError(f"pair is missing {', '.join(missing)}")
    unknown = sorted(set(raw) - set(required) - set(PAIR_DEFAULTS))
    if unknown:
        raise ValueError(f"pair {raw['id']!r} has unknown field(s) {', '.join(unknown)}")
    pair = dict(PAIR_DEFAULTS)
    pair.update(raw)
    for key in ("warmup_s", "block_min_s", "budget_s", "ci_rel"):
        if not isinstance(pair[key], (int, float)) or pair[key] < 0:
            raise ValueError(f"{key} must be a number >= 0, got {pair[key]!r}")
    if not isinstance(pair["min_rounds"], int) or pair["min_rounds"] < 1:
        raise ValueError(f"min_rounds must be an integer >= 1, got {pair['min_rounds']!r}")
    if not isinstance(pair["max_rounds"], int) or pair["max_rounds"] < pair["min_rounds"]:
        raise ValueError(f"max_rounds must be an integer >= min_rounds, got {pair['max_rounds']!r}")
    if kind == "gemm_2_4":
        _check_gemm_2_4(pair, device)
        return pair
    engine = pair["quantized_engine"]
    if engine is not None and engine not in torch.backends.quantized.supported_engines:
        supported = ", ".join(torch.backends.quantized.supported_engines)
        raise ValueError(f"quantized_engine {engine!r} is not supported here (supported: {supported})")
    shape = pair["input_shape"]
    if not isinstance(shape, list) or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(f"input_shape must be a list of positive integers, got {shape!r}")
    for key in ("baseline", "candidate"):
        if not os.path.isfile(pair[key]):
            raise FileNotFoundError(f"{key} artifact not found: {pair[key]}")
    return pair


def _check_gemm_2_4(pair: dict[str, Any], device: str) -> None:
    """Raise unless this device can time the 2:4 pair: the checks that need no GPU work, before any timing."""
    gemm = pair["gemm"]
    if not isinstance(gemm, list) or len(gemm) != 3 or not all(isinstance(d, int) and d > 0 for d in gemm):
        raise ValueError(f"gemm must be [m, k, n], three positive integers, got {gemm!r}")
    if pair["quantized_engine"] is not None:
        raise ValueError(f"quantized_engine applies to artifact pairs, not gemm_2_4, got {pair['quantized_engine']!r}")
    if device != "cuda":
        raise ValueError(f"gemm_2_4 pairs run on device 'cuda' only, got {device!r}")
    capability = torch.cuda.get_device_capability()
    if tuple(capability) < _GEMM_2_4_MIN_CAPABILITY:
        major, minor = _GEMM_2_4_MIN_CAPABILITY
        raise RuntimeError(
            f"2:4 semi-structured sparsity needs compute capability >= {major}.{minor};"
            f" {torch.cuda.get_device_name()} has {capability[0]}.{capability[1]}"
        )


def _padded_gemm(gemm: Sequence[int]) -> list[int]:
    """``[m, k, n]`` rounded up to the multiples every fp16 semi-structured kernel accepts (``_GEMM_2_4_MULTIPLES``).

    Padding is done once, on both sides alike, so dense and sparse time the very same GEMM, and the result
    says which one that was.
    """
    return [-(-size // multiple) * multiple for size, multiple in zip(gemm, _GEMM_2_4_MULTIPLES)]


def _mask_2_4(weight: Any) -> Any:
    """Boolean mask keeping the 2 largest magnitudes in every group of 4 consecutive weights of a row.

    Rows are the output dimension and columns the reduction dimension of ``weight @ x``, which is the
    direction sparse tensor cores group by. Ties go to ``topk``'s choice; exactly 2 of every 4 are kept.

    Args:
        weight: A 2-D tensor whose column count is a multiple of 4.

    Raises:
        ValueError: If ``weight`` is not 2-D or its columns do not split into groups of 4.
    """
    if weight.dim() != 2 or weight.shape[1] % 4:
        raise ValueError(
            f"2:4 masking needs a 2-D weight with a multiple of 4 columns, got shape {tuple(weight.shape)}"
        )
    rows, cols = weight.shape
    groups = weight.abs().reshape(rows, cols // 4, 4)
    kept = groups.topk(2, dim=-1).indices
    mask = torch.zeros(groups.shape, dtype=torch.bool, device=weight.device).scatter_(-1, kept, True)
    return mask.reshape(rows, cols)


def _load(path: str, device: str) -> Any:
    return torch.jit.load(path, map_location=device).eval()


def _time_block(model: Callable[[Any], Any], x: Any, iters: int) -> float:
    """Seconds for ``iters`` back-to-back calls.

    On a GPU the calls only queue kernels, so the block is bracketed by CUDA events and ends with a
    synchronization: the time is the GPU's, not the time the host took to launch.
    """
    if x.is_cuda:
        torch.cuda.synchronize()
        start_event = torch.cuda.Event(enable_timing=True)
        end_event = torch.cuda.Event(enable_timing=True)
        start_event.record()
        for _ in range(iters):
            model(x)
        end_event.record()
        end_event.synchronize()
        return start_event.elapsed_time(end_event) / 1000.0
    start = time.perf_counter()
    for _ in range(iters):
        model(x)
    return time.perf_counter() - start


def _warm_up(model: Callable[[Any], Any], x: Any, seconds: float) -> None:
    calls = 0
    start = time.perf_counter()
    while calls < 2 or time.perf_counter() - start < seconds:
        model(x)
        calls += 1


def _calibrate(model: Callable[[Any], Any], x: Any, block_min_s: float) -> int:
    """Iterations per block so that one block lasts at least ``block_min_s``.

    Timer resolution and per-block overhead are then negligible next to the block, whatever the model.
    """
    iters = 1
    while True:
        elapsed = _time_block(model, x, iters)
        if elapsed >= block_min_s:
            return iters
        # Aim 20% past the target, but grow at most 10x per step in case one fast block was a fluke.
        wanted = math.ceil(iters * 1.2 * block_min_s / max(elapsed, 1e-9))
        iters = max(iters + 1, min(wanted, iters * 10))


def _rounds(
    baseline: Callable[[Any], Any],
    candidate: Callable[[Any], Any],
    x: Any,
    iters: tuple[int, int],
    pair: dict[str, Any],
) -> tuple[list[float], list[float], list[float], str]:
    """Interleaved timed rounds until the stopping rule fires.

    Returns:
        Per-iteration seconds of baseline and candidate and the speedup, one each per round, and the rule
        that stopped: ``ci``, ``budget`` or ``max_rounds``. Every rule waits for ``min_rounds``.
    """
    n_base, n_cand = iters
    baseline_s: list[float] = []
    candidate_s: list[float] = []
    speedups: list[float] = []
    used_s = 0.0
    while len(speedups) < pair["max_rounds"]:
        # Alternate A B / B A so that slow drift (frequency, thermal) does not favour either side.
        if len(speedups) % 2 == 0:
            t_base = _time_block(baseline, x, n_base)
            t_cand = _time_block(candidate, x, n_cand)
        else:
            t_cand = _time_block(candidate, x, n_cand)
            t_base = _time_block(baseline, x, n_base)
        used_s += t_base + t_cand
        baseline_s.append(t_base / n_base)
        candidate_s.append(t_cand / n_cand)
        speedups.append(baseline_s[-1] / candidate_s[-1])
        if len(speedups) < pair["min_rounds"]:
            continue
        if _ci_rel_halfwidth(speedups) <= pair["ci_rel"]:
            return baseline_s, candidate_s, speedups, "ci"
        if used_s >= pair["budget_s"]:
            return baseline_s, candidate_s, speedups, "budget"
    return baseline_s, candidate_s, speedups, "max_rounds"


_Operands = tuple[Callable[[Any], Any], Callable[[Any], Any], Any, dict[str, Any]]
"""What a pair times: baseline, candidate, their input, and facts the result reports about them."""


def _artifact_operands(pair: dict[str, Any], device: str) -> _Operands:
    if pair["quantized_engine"] is not None:
        # int8 kernels dispatch on the engine set when the model runs (fbgemm/x86 on x86, qnnpack on ARM).
        torch.backends.quantized.engine = pair["quantized_engine"]
    baseline = _load(pair["baseline"], device)
    candidate = _load(pair["candidate"], device)
    torch.manual_seed(pair["seed"])
    x = torch.randn(pair["input_shape"]).to(device)
    return baseline, candidate, x, {}


def _gemm_2_4_operands(pair: dict[str, Any]) -> _Operands:
    """Dense and 2:4 semi-structured fp16 ``torch.mm`` on the GPU, checked to agree before they are timed.

    Raises:
        RuntimeError: If the conversion or the sparse product fails, or its result is not the dense one's.
    """
    m, k, n = _padded_gemm(pair["gemm"])
    torch.manual_seed(pair["seed"])
    weight = torch.randn(m, k, device="cuda", dtype=torch.float16)
    weight = weight * _mask_2_4(weight)
    x = torch.randn(k, n, device="cuda", dtype=torch.float16)
    shape = f"{m}x{k} @ {k}x{n} fp16 on {torch.cuda.get_device_name()}"
    try:
        sparse_weight = torch.sparse.to_sparse_semi_structured(weight)
        sparse_out = torch.mm(sparse_weight, x)
    except Exception as exc:  # noqa: BLE001 - any backend failure becomes one clear error, never a timing
        raise RuntimeError(f"2:4 semi-structured GEMM {shape} failed: {type(exc).__name__}: {exc}") from exc
    dense_out = torch.mm(weight, x).float()
    rel_error = float((sparse_out.float() - dense_out).norm() / dense_out.norm().clamp_min(1e-12))
    if not rel_error <= _GEMM_2_4_MAX_REL_ERROR:
        raise RuntimeError(
            f"2:4 semi-structured GEMM {shape} disagrees with the dense product (relative error {rel_error:.3g})"
        )

    def dense_mm(inp: Any) -> Any:
        return torch.mm(weight, inp)

    def sparse_mm(inp: Any) -> Any:
        return torch.mm(sparse_weight, inp)

    facts = {"gemm": list(pair["gemm"]), "gemm_padded": [m, k, n], "backend": type(sparse_weight).BACKEND}
    return dense_mm, sparse_mm, x, facts


def _time_pair(pair: dict[str, Any], device: str) -> dict[str, Any]:
    thermal_before = _thermal()
    busy_start = _machine_busy_s()
    own_start = _own_cpu_s()
    wall_start = time.perf_counter()

    if pair["kind"] == "gemm_2_4":
        baseline, candidate, x, facts = _gemm_2_4_operands(pair)
        # The operands require no grad, so no graph is recorded either way; plain no_grad spares the prototype
        # tensor subclass the extra rules of inference mode.
        mode: Any = torch.no_grad()
    else:
        baseline, candidate, x, facts = _artifact_operands(pair, device)
        mode = torch.inference_mode()
    with mode:
        _warm_up(baseline, x, pair["warmup_s"])
        _warm_up(candidate, x, pair["warmup_s"])
        iters = (_calibrate(baseline, x, pair["block_min_s"]), _calibrate(candidate, x, pair["block_min_s"]))
        baseline_s, candidate_s, speedups, stopped_by = _rounds(baseline, candidate, x, iters, pair)

    wall_s = time.perf_counter() - wall_start
    busy_end = _machine_busy_s()
    other_cpu_cores = None
    if busy_start is not None and busy_end is not None:
        other_s = (busy_end - busy_start) - (_own_cpu_s() - own_start)
        # Clock-tick granularity can make a quiet machine read slightly negative.
        other_cpu_cores = max(0.0, other_s / wall_s)
    return {
        "id": pair["id"],
        "iters_per_block": {"baseline": iters[0], "candidate": iters[1]},
        "baseline_s": baseline_s,
        "candidate_s": candidate_s,
        "speedups": speedups,
        "rounds": len(speedups),
        "stopped_by": stopped_by,
        "wall_s": wall_s,
        "other_cpu_cores": other_cpu_cores,
        "thermal_before": thermal_before,
        "thermal_after": _thermal(),
        "summary": summarize(baseline_s, candidate_s, speedups),
        **facts,
    }


def _handle_time(request: dict[str, Any]) -> dict[str, Any]:
    threads = request.get("threads", 1)
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    pairs = request.get("pairs")
    if not isinstance(pairs, list) or not pairs:
        raise ValueError("pairs must be a non-empty list")
    device = request.get("device", "cpu")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' asked for, but torch.cuda.is_available() is False here")
    # Validate every pair before timing any, so a typo in the last pair does not waste the budget of the others.
    validated = [_validate_pair(p, device) for p in pairs]
    torch.set_num_threads(threads)
    return {"ok": True, "results": [_time_pair(p, device) for p in validated]}


def _handle_cooldown(request: dict[str, Any]) -> dict[str, Any]:
    max_s = request.get("max_s")
    below_c = request.get("below_c")
    if not isinstance(max_s, (int, float)) or max_s < 0:
        raise ValueError(f"max_s must be a number >= 0, got {max_s!r}")
    if below_c is not None and not isinstance(below_c, (int, float)):
        raise ValueError(f"below_c must be a number or null, got {below_c!r}")
    start = time.monotonic()
    thermal = _thermal()
    if below_c is None or thermal["temperature_c"] is None:
        time.sleep(max_s)
        thermal = _thermal()
    else:
        while thermal["temperature_c"] >= below_c and time.monotonic() - start < max_s:
            time.sleep(min(1.0, max(0.0, max_s - (time.monotonic() - start))))
            thermal = _thermal()
    return {"ok": True, "waited_s": time.monotonic() - start, "thermal": thermal}


def _parse(line: str) -> dict[str, Any]:
    request = json.loads(line)
    if not isinstance(request, dict):
        raise ValueError(f"a request must be a JSON object, got {type(request).__name__}")
    return request


def _handle(request: dict[str, Any]) -> dict[str, Any]:
    op = request.get("op")
    if op == "info":
        return {"ok": True, "machine": _machine_info()}
    if op == "time":
        return _handle_time(request)
    if op == "cooldown":
        return _handle_cooldown(request)
    raise ValueError(f"unknown op {op!r}; valid: info, time, cooldown, quit")


def _error_response(exc: BaseException) -> dict[str, Any]:
    message = " ".join(f"{type(exc).__name__}: {exc}".split())
    return {"ok": False, "error": message, "traceback": traceback.format_exc()}


def _claim_stdout() -> TextIO:
    """Keep the real stdout for responses and send everything else written to it to stderr.

    Redirecting at the file-descriptor level, not only ``sys.stdout``, also catches prints from C++ code
    (libtorch, OpenMP), which would otherwise corrupt the JSON stream.
    """
    sys.stdout.flush()
    responses = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return responses


def main() -> int:
    """Serve requests from stdin until ``quit`` or end of input.

    Returns:
        The process exit status, 0.
    """
    out = _claim_stdout()
    # Inter-op threads can be set only once per process, before any parallel work; intra-op threads are set
    # per request with torch.set_num_threads.
    torch.set_num_interop_threads(1)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = _parse(line)
            if request.get("op") == "quit":
                break
            response = _handle(request)
        except Exception as exc:  # noqa: BLE001 - any failure is reported to the host, and serving goes on
            response = _error_response(exc)
        out.write(json.dumps(response) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
