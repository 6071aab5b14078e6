"""The layer-level sweep, as Wen et al. measured it: every conv (lowered to GEMM) and linear layer of a model,
magnitude-pruned to one sparsity, timed as a dense GEMM against a CSR sparse GEMM. On a GPU the same shapes are
also timed as dense fp16 against 2:4 semi-structured fp16, the one sparse format with hardware support there.

A conv with kernel (O, C, kh, kw) producing Ho x Wo outputs on a batch of B is the GEMM
(O x C*kh*kw) @ (C*kh*kw x B*Ho*Wo); a linear layer is (O x I) @ (I x B). Layers with the same GEMM shape are
timed once and counted as many times as they occur.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

import compressors
from bench.engines.artifacts import save_torchscript
from compressors.sparse_modules import to_csr

__all__ = ["Gemm", "model_gemms", "DenseGemm", "CsrGemm", "gemm_pairs", "gemm_2_4_pairs"]


@dataclass(frozen=True)
class Gemm:
    """One GEMM shape (m x k) @ (k x n), the layers that lower to it, and the first such layer's weight."""

    layers: tuple[str, ...]
    m: int
    k: int
    n: int
    weight: torch.Tensor


class DenseGemm(nn.Module):
    """W @ X with W dense (its zeros stored and multiplied): what a pruned layer runs on dense kernels."""

    if TYPE_CHECKING:
        # For the type checker only: this module postpones annotations, and TorchScript cannot resolve a class
        # annotation given as a string; it types the buffer from its value.
        weight: torch.Tensor

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.mm(self.weight, x)


class CsrGemm(nn.Module):
    """W @ X with W in CSR, on torch.sparse.mm (MKL's sparse BLAS on x86 builds)."""

    if TYPE_CHECKING:
        # For the type checker only, as in DenseGemm.
        crow_indices: torch.Tensor
        col_indices: torch.Tensor
        values: torch.Tensor

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        crow, col, values = to_csr(weight)
        self.register_buffer("crow_indices", crow)
        self.register_buffer("col_indices", col)
        self.register_buffer("values", values)
        self.shape = [int(weight.shape[0]), int(weight.shape[1])]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        csr = torch.sparse_csr_tensor(self.crow_indices, self.col_indices, self.values, self.shape)
        return torch.sparse.mm(csr, x)


@torch.inference_mode()
def model_gemms(model: nn.Module, example_input: torch.Tensor) -> list[Gemm]:
    """The distinct GEMM shapes of `model`'s ungrouped convs and linear layers on `example_input`."""
    shapes: dict[tuple[int, int, int], list[str]] = {}
    weights: dict[tuple[int, int, int], torch.Tensor] = {}
    hooks = []

    def record(name: str, module: nn.Linear | nn.Conv2d, output: torch.Tensor) -> None:
        weight = module.weight.reshape(module.weight.shape[0], -1)
        if isinstance(module, nn.Conv2d):
            n = output.shape[0] * output.shape[2] * output.shape[3]
        else:
            n = output.numel() // output.shape[-1]
        key = (weight.shape[0], weight.shape[1], n)
        shapes.setdefault(key, []).append(name)
        weights.setdefault(key, weight.detach().clone())

    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1):
            hooks.append(module.register_forward_hook(lambda mod, _inp, out, name=name: record(name, mod, out)))
    try:
        model.eval()(example_input)
    finally:
        for hook in hooks:
            hook.remove()
    return [Gemm(tuple(names), *key, weights[key]) for key, names in shapes.items()]


def gemm_pairs(
    model: nn.Module, example_input: torch.Tensor, sparsity: float, directory: Path
) -> tuple[list[Gemm], list[dict[str, Any]]]:
    """Prune every layer of `model` to `sparsity` by magnitude and write a dense/CSR artifact pair per GEMM shape.

    Returns:
        The GEMMs (with their pruned weights) and, for each, a worker pair without timing settings:
        `{"id", "baseline", "candidate", "input_shape"}`.
    """
    pruner = compressors.get("prune.unstructured").from_dict(
        {"sparsity": sparsity, "scope": "layer", "execution": "dense"}
    )
    pruned = pruner.apply(model, example_input).model
    gemms = model_gemms(pruned, example_input)
    pairs = []
    for index, gemm in enumerate(gemms):
        dense_path = directory / f"gemm{index}-dense.pt"
        csr_path = directory / f"gemm{index}-csr.pt"
        operand = torch.zeros(gemm.k, gemm.n)
        save_torchscript(DenseGemm(gemm.weight), operand, dense_path)
        save_torchscript(CsrGemm(gemm.weight), operand, csr_path)
        pairs.append(
            {
                "id": f"gemm{index}",
                "baseline": str(dense_path),
                "candidate": str(csr_path),
                "input_shape": [gemm.k, gemm.n],
            }
        )
    return gemms, pairs


def gemm_2_4_pairs(model: nn.Module, example_input: torch.Tensor) -> tuple[list[Gemm], list[dict[str, Any]]]:
    """A worker pair of kind ``gemm_2_4`` per GEMM shape of `model`: dense vs 2:4 semi-structured fp16 on a GPU.

    The worker builds its own seeded 2:4 weight of each shape: the semi-structured tensor cannot travel as
    TorchScript, and a 2:4 kernel's speed depends on the shape, not on which two of four weights survive.

    Returns:
        The GEMMs (with their unpruned weights) and, for each, a worker pair without timing settings:
        `{"id", "kind", "gemm"}`.
    """
    gemms = model_gemms(model, example_input)
    pairs = [
        {"id": f"gemm{index}", "kind": "gemm_2_4", "gemm": [gemm.m, gemm.k, gemm.n]} for index, gemm in enumerate(gemms)
    ]
    return gemms, pairs
