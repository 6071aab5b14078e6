"""The request loop: one JSON request per line on stdin, one JSON response per line on stdout (see the package)."""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import Any, TextIO

import torch

from .machine import machine_info, thermal
from .protocol import DEVICES, validate_pair
from .timing import time_pair

__all__ = ["main"]


def _handle_time(request: dict[str, Any]) -> dict[str, Any]:
    threads = request.get("threads", 1)
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
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
    validated = [validate_pair(p, device) for p in pairs]
    torch.set_num_threads(threads)
    return {"ok": True, "results": [time_pair(p, device, threads) for p in validated]}


def _handle_cooldown(request: dict[str, Any]) -> dict[str, Any]:
    max_s = request.get("max_s")
    below_c = request.get("below_c")
    if not isinstance(max_s, (int, float)) or max_s < 0:
        raise ValueError(f"max_s must be a number >= 0, got {max_s!r}")
    if below_c is not None and not isinstance(below_c, (int, float)):
        raise ValueError(f"below_c must be a number or null, got {below_c!r}")
    start = time.monotonic()
    state = thermal()
    if below_c is None or state["temperature_c"] is None:
        time.sleep(max_s)
        state = thermal()
    else:
        while state["temperature_c"] >= below_c and time.monotonic() - start < max_s:
            time.sleep(min(1.0, max(0.0, max_s - (time.monotonic() - start))))
            state = thermal()
    return {"ok": True, "waited_s": time.monotonic() - start, "thermal": state}


def _parse(line: str) -> dict[str, Any]:
    request = json.loads(line)
    if not isinstance(request, dict):
        raise ValueError(f"a request must be a JSON object, got {type(request).__name__}")
    return request


def _handle(request: dict[str, Any]) -> dict[str, Any]:
    op = request.get("op")
    if op == "info":
        return {"ok": True, "machine": machine_info()}
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
    (libtorch, OpenMP, ONNX Runtime), which would otherwise corrupt the JSON stream.
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
