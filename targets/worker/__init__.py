"""Timing worker: the package that runs on a measurement device, shipped there as one zipapp.

Run as ``python worker.pyz`` (see ``targets._zipapp``) or ``python -m targets.worker``. It is a persistent process
that reads one JSON request per line on stdin and writes one JSON response per line on stdout, so that the slow
``import torch`` is paid once per device rather than once per measurement.

Requests:
    ``{"op": "info"}``: the machine fingerprint, ``{"ok": true, "machine": {...}}``, with each engine's facts
    (``torch``, ``quantized_engines``, ``onnxruntime``: its version or null, ``onnxruntime_providers``: [] without it).
    ``{"op": "time", "threads": 1, "device": "cpu", "pairs": [PAIR, ...]}``: interleaved baseline/candidate
    timing, ``{"ok": true, "results": [...]}``, each result with the device's thermal state before and after.
    ``device`` is ``"cpu"`` (the default) or ``"cuda"``. See ``PAIR_DEFAULTS`` for the optional fields of a
    PAIR (the timing knobs default to ``TIMING_DEFAULTS``); its ``kind`` says what is timed and which fields are
    required besides ``id``:

    - ``"artifacts"`` (the default): two model files, ``baseline`` and ``candidate``, on a random input of
      ``input_shape`` seeded with ``seed``, run by the pair's ``engine`` (see ``engines.ENGINES``):
      ``"torchscript"`` (the default; TorchScript files, ``quantized_engine`` set for the pair and restored after
      it) or ``"onnxruntime"`` (``.onnx`` files with one input, a dynamic batch axis; one session each with the
      request's threads intra-op, 1 inter-op, sequential, ``ORT_ENABLE_ALL``, and the device's execution provider
      alone). The result adds ``engine``: the engine's name and version, and for torchscript the
      ``quantized_engine``, for onnxruntime the ``graph_optimization_level``, the session's ``providers`` and its
      ``intra_op_threads`` and ``inter_op_threads``. An engine not installed on the device fails the request.
    - ``"stream"``: like ``"artifacts"``, but timed on real inputs instead of a random one: ``inputs`` is a file
      of one float tensor (N, ...) saved by ``torch.save`` (read with ``weights_only``), and each of its N rows is
      run alone, at batch 1, one call per side and input, interleaved (see ``stream``); for models whose work
      depends on the input. ``baseline_s``/``candidate_s`` are then each round's mean over the inputs, and the
      result adds ``inputs`` (N) and ``baseline_inputs_s``/``candidate_inputs_s``: each input's median over the
      rounds, in the file's order.
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

The package depends only on the standard library and torch (onnxruntime and numpy are imported only when a pair
or ``info`` asks for them), imports nothing from the rest of the project and only itself by relative imports,
because it runs from a zipapp on remote devices that may have an older torch (2.9) and Python (3.9). The
statistics are plain stdlib so that the host imports them from here and both sides agree on the numbers; the
timing defaults and their validation live here too, for the host's configuration to take.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .machine import THROTTLE_BITS_NOW
    from .protocol import DEVICES, MAX_ROUNDS, MAX_SECONDS, PAIR_DEFAULTS, TIMING_DEFAULTS, check_timing
    from .serve import main
    from .stats import iqr, median, median_ci, summarize

__all__ = [
    "DEVICES", "MAX_ROUNDS", "MAX_SECONDS", "PAIR_DEFAULTS", "THROTTLE_BITS_NOW", "TIMING_DEFAULTS", "check_timing",
    "iqr", "main", "median", "median_ci", "summarize",
]  # fmt: skip

# Each public name and the submodule that defines it, imported on first use (PEP 562): the host reads the stdlib
# statistics of ``stats`` to load records and reports, and must not pay ``import torch`` (seconds) for it, which
# ``machine``, ``protocol`` and ``serve`` need.
_HOMES = {
    name: module
    for module, names in (
        ("machine", ("THROTTLE_BITS_NOW",)),
        ("protocol", ("DEVICES", "MAX_ROUNDS", "MAX_SECONDS", "PAIR_DEFAULTS", "TIMING_DEFAULTS", "check_timing")),
        ("serve", ("main",)),
        ("stats", ("iqr", "median", "median_ci", "summarize")),
    )
    for name in names
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
