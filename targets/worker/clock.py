"""The one clock every timing reads: host time for CPU work, CUDA events for work queued on a GPU."""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

__all__ = ["Model", "time_block"]

Model = Callable[[Any], Any]


def time_block(model: Model, x: Any, iters: int) -> float:
    """Seconds for ``iters`` back-to-back calls.

    On a GPU the calls only queue kernels, so a block on a CUDA tensor is bracketed by CUDA events and ends with a
    synchronization: the time is the GPU's, not the time the host took to launch. Inputs that are not CUDA tensors
    (a numpy array for ONNX Runtime, whose runs return only when done) are timed by the host clock.
    """
    if getattr(x, "is_cuda", False):
        torch.cuda.synchronize()
        start_event = torch.cuda.Event(enable_timing=True)
        end_event = torch.cuda.Event(enable_timing=True)
        start_event.record()
        for _ in range(iters):
            model(x)
        end_event.record()
        end_event.synchronize()
        return float(start_event.elapsed_time(end_event)) / 1000.0
    start = time.perf_counter()
    for _ in range(iters):
        model(x)
    return time.perf_counter() - start
