"""``.onnx`` artifacts run by ONNX Runtime, optional on a device: imported only when a pair or ``info`` asks.

Sessions are set up the same way everywhere, so that numbers from two devices differ by the device only: the
request's threads inside an operator, one thread across operators, sequential execution, all graph optimizations,
and exactly the execution provider of the asked device. The input is the same seeded ``torch.randn`` (or the same
stream of real inputs) a TorchScript pair gets, handed over as float32 numpy arrays; on CUDA each run therefore
includes its copies to and from the GPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

from ..inputs import pair_inputs
from ..operands import Operands

__all__ = ["NOT_INSTALLED", "PROVIDERS", "check", "info", "operands"]

NOT_INSTALLED = "onnxruntime is not installed on this device (pip install onnxruntime)"

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
"""The one execution provider a session of each device asks for."""

_OPTIMIZATION = "ORT_ENABLE_ALL"


def _module() -> Any:
    """The onnxruntime module, or None where it is not installed."""
    try:
        import onnxruntime  # noqa: PLC0415 - optional on a device; imported only when asked for
    except ImportError:
        return None
    return onnxruntime


def _require() -> Any:
    ort = _module()
    if ort is None:
        raise RuntimeError(NOT_INSTALLED)
    return ort


def info() -> dict[str, Any]:
    """The onnxruntime version and its execution providers here; None and [] where it is not installed."""
    ort = _module()
    if ort is None:
        return {"onnxruntime": None, "onnxruntime_providers": []}
    return {"onnxruntime": str(ort.__version__), "onnxruntime_providers": list(ort.get_available_providers())}


def check(pair: dict[str, Any], device: str) -> None:
    """Raise unless onnxruntime is installed here with the provider of ``device``, and the pair asks nothing else."""
    ort = _require()
    if pair["quantized_engine"] is not None:
        raise ValueError(
            f"quantized_engine applies to torchscript pairs, not onnxruntime, got {pair['quantized_engine']!r}"
        )
    provider = PROVIDERS[device]
    available = list(ort.get_available_providers())
    if provider not in available:
        raise RuntimeError(
            f"device {device!r} asked for, but onnxruntime {ort.__version__} here has no {provider}"
            f" (providers: {', '.join(available)})"
        )


def _session(ort: Any, path: str, device: str, threads: int) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _OPTIMIZATION)
    session = ort.InferenceSession(path, sess_options=options, providers=[PROVIDERS[device]])
    if PROVIDERS[device] not in session.get_providers():
        # ORT falls back to the CPU, with a warning only, when a provider's libraries fail to load.
        raise RuntimeError(
            f"onnxruntime could not start {PROVIDERS[device]} for {path} (it offered {session.get_providers()});"
            " the worker's stderr says why"
        )
    return session


def _runner(session: Any, path: str) -> Callable[[Any], Any]:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise ValueError(f"{path} has {len(inputs)} inputs ({names}); a pair feeds exactly one")
    name = inputs[0].name

    def run(x: Any) -> Any:
        return session.run(None, {name: x})

    return run


@contextmanager
def operands(pair: dict[str, Any], device: str, threads: int) -> Iterator[Operands]:
    """Both ``.onnx`` files as ORT sessions with ``threads`` intra-op threads, and the pair's float32 input(s)."""
    ort = _require()
    baseline = _session(ort, pair["baseline"], device, threads)
    candidate = _session(ort, pair["candidate"], device, threads)
    x = pair_inputs(pair, lambda tensor: tensor.numpy())
    facts = {
        "engine": {
            "name": "onnxruntime",
            "version": str(ort.__version__),
            "graph_optimization_level": _OPTIMIZATION,
            "providers": list(baseline.get_providers()),
            "intra_op_threads": threads,
            "inter_op_threads": 1,
        }
    }
    yield Operands(_runner(baseline, pair["baseline"]), _runner(candidate, pair["candidate"]), x, facts)
