"""Linear and Conv2d layers that multiply by a CSR weight, so unstructured sparsity can run on sparse kernels.

The CSR arrays are plain buffers and the sparse tensor is rebuilt in `forward` (it wraps the buffers, no copy):
TorchScript cannot hold a sparse tensor as a module attribute, and the timing worker only loads TorchScript files.
"""

# No `from __future__ import annotations`: TorchScript compiles these signatures (it reads the builtin generics
# `list[int]`, `tuple[int, int]` and `Tensor | None` as it read typing.List, Tuple and Optional).
import sys
from collections.abc import Collection
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from compressors._direct_reads import WeightReadPast, read_past_reason, reading_module
from compressors._modules import conv_pair

__all__ = ["CSR_ACTION", "CsrConv2d", "CsrLinear", "DirectWeightRead", "direct_read_reason", "to_csr"]

CSR_ACTION = "run CSR kernels in"
"""The `CompressorLimit.action` of a model whose code reads a layer's weight past the layer: the suite words the
skip as "prune.unstructured cannot run CSR kernels in swin_t: ..."."""

_INT32_MAX = 2**31 - 1


def to_csr(weight_2d: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Encodes the non-zeros of a 2-D weight in CSR form.

    Indices are int32, half the bytes of int64; torch.sparse.mm accepts them on CPU (and was no slower with
    them in a probe).

    Args:
        weight_2d: A (rows, cols) dense tensor; exact zeros are dropped.

    Returns:
        `(crow_indices, col_indices, values)`: int32 of length rows + 1, int32 of length nnz, and the non-zero
        values in row-major order, detached and in the weight's dtype.

    Raises:
        ValueError: If the tensor is not 2-D or has too many non-zeros for int32 indices.
    """
    if weight_2d.dim() != 2:
        raise ValueError(f"to_csr needs a 2-D tensor, got shape {tuple(weight_2d.shape)}")
    weight = weight_2d.detach()
    nonzero = weight != 0
    nnz = int(nonzero.sum())
    if nnz > _INT32_MAX:
        raise ValueError(f"to_csr supports at most {_INT32_MAX} non-zeros (int32 indices), got {nnz}")
    row_counts = nonzero.sum(dim=1)
    crow = torch.cat([row_counts.new_zeros(1), row_counts.cumsum(0)]).to(torch.int32)
    col = nonzero.nonzero()[:, 1].to(torch.int32)
    values = weight[nonzero].clone()
    return crow, col, values


def direct_read_reason(readers: Collection[str], layers: Collection[str]) -> str:
    """Why CSR execution refuses a model whose modules `readers` (class names) read the `.weight` of their own
    `layers` (dense class names: "Linear", "Conv2d") instead of calling them, in one line."""
    return f"{read_past_reason(readers, layers, 'CSR execution')} (dense execution measures the same zeros)"


class DirectWeightRead(WeightReadPast):
    """Raised where code reads a CSR module's `.weight`: the dense weight is gone, and a module that reads it rather
    than calling the layer would not run the CSR kernel anyway.

    A `CompressorLimit`, so the cell is skipped with the reason wherever the read happens (export, evaluation),
    and an `AttributeError`, so `hasattr(module, "weight")` stays False as for any module without a weight.
    """

    def __init__(self, reader: str, layer: str) -> None:
        super().__init__(CSR_ACTION, direct_read_reason([reader], [layer]))


class _NoDenseWeight(nn.Module):
    """Base of the CSR modules: reading the `.weight` the dense layer had raises `DirectWeightRead` naming the
    reader, not a bare AttributeError. Only eager Python goes through `__getattr__`; TorchScript never compiles it."""

    def __getattr__(self, name: str) -> Tensor | nn.Module:
        if name == "weight":
            # Frame 1 is the code that wrote `<module>.<layer>.weight`.
            raise DirectWeightRead(reading_module(sys._getframe(1)), type(self).__name__.removeprefix("Csr"))
        return super().__getattr__(name)


def _bias_or_none(bias: Tensor | None) -> Tensor | None:
    return None if bias is None else bias.detach().clone()


def _conv_out_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


class CsrLinear(_NoDenseWeight):
    """`nn.Linear` with its weight stored and multiplied in CSR: y = (W_csr @ x^T)^T + b."""

    in_features: int
    out_features: int
    crow_indices: Tensor
    col_indices: Tensor
    values: Tensor
    if TYPE_CHECKING:
        # For the type checker only: TorchScript types the buffer from its value, so a missing bias stays a
        # None constant and `if self.bias is not None` is compiled away.
        bias: Tensor | None

    def __init__(self, weight: Tensor, bias: Tensor | None) -> None:
        """Encodes a dense (out_features, in_features) weight; zeros are not stored.

        Args:
            weight: The dense weight, typically pruned.
            bias: The bias, or None.
        """
        super().__init__()
        self.out_features, self.in_features = int(weight.shape[0]), int(weight.shape[1])
        crow, col, values = to_csr(weight)
        self.register_buffer("crow_indices", crow)
        self.register_buffer("col_indices", col)
        self.register_buffer("values", values)
        self.register_buffer("bias", _bias_or_none(bias))

    @classmethod
    def from_dense(cls, linear: nn.Linear) -> "CsrLinear":
        """Builds the CSR twin of `linear` (same outputs, weight zeros dropped)."""
        return cls(linear.weight, linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        weight = torch.sparse_csr_tensor(
            self.crow_indices,
            self.col_indices,
            self.values,
            [self.out_features, self.in_features],
        )
        flat = x.reshape(-1, self.in_features)
        out = torch.sparse.mm(weight, flat.t()).t()
        if self.bias is not None:
            out = out + self.bias
        out_shape: list[int] = list(x.shape[:-1]) + [self.out_features]
        return out.reshape(out_shape)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, nnz={self.values.numel()}"


class CsrConv2d(_NoDenseWeight):
    """`nn.Conv2d` (groups == 1, zero padding) lowered to unfold + CSR matmul.

    A batched (B, C, H, W) input is unfolded to columns (C*kh*kw, B*L) and multiplied by the CSR weight
    (O, C*kh*kw); this is how Wen et al. ran sparse convolutions, so its speed is the one the benchmark reports
    for "sparse kernels".
    """

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    crow_indices: Tensor
    col_indices: Tensor
    values: Tensor
    if TYPE_CHECKING:
        # For the type checker only: TorchScript types the buffer from its value, so a missing bias stays a
        # None constant and `if self.bias is not None` is compiled away.
        bias: Tensor | None

    def __init__(
        self,
        weight: Tensor,
        bias: Tensor | None,
        stride: tuple[int, int],
        padding: tuple[int, int],
        dilation: tuple[int, int],
    ) -> None:
        """Encodes a dense (O, C, kh, kw) conv weight; zeros are not stored.

        Args:
            weight: The dense weight, typically pruned.
            bias: The bias, or None.
            stride: (sh, sw).
            padding: Symmetric zero padding (ph, pw).
            dilation: (dh, dw).
        """
        super().__init__()
        out_channels, in_channels, kh, kw = (int(size) for size in weight.shape)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = (kh, kw)
        self.stride = (int(stride[0]), int(stride[1]))
        self.padding = (int(padding[0]), int(padding[1]))
        self.dilation = (int(dilation[0]), int(dilation[1]))
        crow, col, values = to_csr(weight.reshape(out_channels, -1))
        self.register_buffer("crow_indices", crow)
        self.register_buffer("col_indices", col)
        self.register_buffer("values", values)
        self.register_buffer("bias", _bias_or_none(bias))

    @classmethod
    def from_dense(cls, conv: nn.Conv2d) -> "CsrConv2d":
        """Builds the CSR twin of `conv`.

        Raises:
            ValueError: If the conv is grouped, pads with anything but zeros, or uses string padding; those
                have no unfold + single-matmul form here, and the caller keeps them dense.
        """
        if conv.groups != 1:
            raise ValueError(f"CsrConv2d needs groups == 1, got {conv.groups}")
        if conv.padding_mode != "zeros":
            raise ValueError(f"CsrConv2d needs padding_mode 'zeros', got {conv.padding_mode!r}")
        if isinstance(conv.padding, str):
            raise ValueError(f"CsrConv2d needs numeric padding, got {conv.padding!r}")
        return cls(conv.weight, conv.bias, conv_pair(conv.stride), conv_pair(conv.padding), conv_pair(conv.dilation))

    def forward(self, x: Tensor) -> Tensor:
        batch, height, width = x.shape[0], x.shape[-2], x.shape[-1]
        out_h = _conv_out_size(height, self.kernel_size[0], self.stride[0], self.padding[0], self.dilation[0])
        out_w = _conv_out_size(width, self.kernel_size[1], self.stride[1], self.padding[1], self.dilation[1])
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)
        positions = cols.shape[2]
        cols = cols.transpose(0, 1).reshape(cols.shape[1], batch * positions)
        weight = torch.sparse_csr_tensor(
            self.crow_indices,
            self.col_indices,
            self.values,
            [self.out_channels, cols.shape[0]],
        )
        out = torch.sparse.mm(weight, cols).reshape(self.out_channels, batch, positions).transpose(0, 1)
        if self.bias is not None:
            out = out + self.bias.reshape(1, -1, 1)
        return out.reshape(batch, self.out_channels, out_h, out_w)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, nnz={self.values.numel()}"
        )
