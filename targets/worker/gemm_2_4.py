"""Pairs of kind ``gemm_2_4``: a dense fp16 GEMM against the same weight as 2:4 semi-structured sparse, on a GPU.

TorchScript cannot hold the semi-structured tensor subclass, so the worker builds both operands itself from a
seeded random weight instead of loading artifacts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from .operands import Operands

__all__ = ["check", "mask_2_4", "operands", "padded_gemm"]

MULTIPLES = (32, 64, 8)
"""(m, k, n) multiples that both fp16 semi-structured backends accept: CUTLASS wants the sparse weight in
multiples of (32, 64) and cuSPARSELt of (16, 16); both pad the dense operand to multiples of 8 inside every
call, which would put a copy into the sparse side's time only, so n is padded up front as well."""

MIN_CAPABILITY = (8, 0)
"""Sparse tensor cores, which the semi-structured kernels need, arrived with Ampere (sm_80)."""

MAX_REL_ERROR = 1e-2
"""Largest relative (Frobenius) difference accepted between the sparse and the dense product, both fp16 with
fp32 accumulation; a mis-packed weight gives differences of order 1."""


def check(pair: dict[str, Any], device: str) -> None:
    """Raise unless this device can time the 2:4 pair: the checks that need no GPU work, before any timing."""
    gemm = pair["gemm"]
    if not isinstance(gemm, list) or len(gemm) != 3 or not all(isinstance(d, int) and d > 0 for d in gemm):
        raise ValueError(f"gemm must be [m, k, n], three positive integers, got {gemm!r}")
    if pair["quantized_engine"] is not None:
        raise ValueError(f"quantized_engine applies to artifact pairs, not gemm_2_4, got {pair['quantized_engine']!r}")
    if device != "cuda":
        raise ValueError(f"gemm_2_4 pairs run on device 'cuda' only, got {device!r}")
    capability = torch.cuda.get_device_capability()
    if tuple(capability) < MIN_CAPABILITY:
        major, minor = MIN_CAPABILITY
        raise RuntimeError(
            f"2:4 semi-structured sparsity needs compute capability >= {major}.{minor};"
            f" {torch.cuda.get_device_name()} has {capability[0]}.{capability[1]}"
        )


def padded_gemm(gemm: Sequence[int]) -> list[int]:
    """``[m, k, n]`` rounded up to the multiples every fp16 semi-structured kernel accepts (``MULTIPLES``).

    Padding is done once, on both sides alike, so dense and sparse time the very same GEMM, and the result
    says which one that was.
    """
    return [-(-size // multiple) * multiple for size, multiple in zip(gemm, MULTIPLES)]


def mask_2_4(weight: Any) -> Any:
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


@contextmanager
def operands(pair: dict[str, Any], device: str, threads: int) -> Iterator[Operands]:
    """Dense and 2:4 semi-structured fp16 ``torch.mm`` on the GPU, checked to agree before they are timed.

    The operands require no grad, so no graph is recorded either way; plain no_grad spares the prototype tensor
    subclass the extra rules of inference mode.

    Raises:
        RuntimeError: If the conversion or the sparse product fails, or its result is not the dense one's.
    """
    m, k, n = padded_gemm(pair["gemm"])
    torch.manual_seed(pair["seed"])
    weight = torch.randn(m, k, device="cuda", dtype=torch.float16)
    weight = weight * mask_2_4(weight)
    x = torch.randn(k, n, device="cuda", dtype=torch.float16)
    shape = f"{m}x{k} @ {k}x{n} fp16 on {torch.cuda.get_device_name()}"
    try:
        sparse_weight = torch.sparse.to_sparse_semi_structured(weight)
        sparse_out = torch.mm(sparse_weight, x)
    except Exception as exc:  # noqa: BLE001 - any backend failure becomes one clear error, never a timing
        raise RuntimeError(f"2:4 semi-structured GEMM {shape} failed: {type(exc).__name__}: {exc}") from exc
    dense_out = torch.mm(weight, x).float()
    rel_error = float((sparse_out.float() - dense_out).norm() / dense_out.norm().clamp_min(1e-12))
    if not rel_error <= MAX_REL_ERROR:
        raise RuntimeError(
            f"2:4 semi-structured GEMM {shape} disagrees with the dense product (relative error {rel_error:.3g})"
        )

    def dense_mm(inp: Any) -> Any:
        return torch.mm(weight, inp)

    def sparse_mm(inp: Any) -> Any:
        return torch.mm(sparse_weight, inp)

    facts = {"gemm": list(pair["gemm"]), "gemm_padded": [m, k, n], "backend": type(sparse_weight).BACKEND}
    with torch.no_grad():
        yield Operands(dense_mm, sparse_mm, x, facts)
