"""Bytes on disk from real encodings, and parameter counts.

Every figure is the length of bytes actually produced: the dense state dict as `torch.save` writes it, the same
weights with every matrix stored as CSR (int32 indices, float32 values), and gzip of the dense file. The gzip
column shows why zeros help storage even when they do not help speed.
"""

from __future__ import annotations

import gzip
import io
import math
from typing import Any

import torch
from torch import nn

__all__ = ["dense_bytes", "encode_csr_state", "decode_csr_state", "size_report"]


def dense_bytes(state: dict[str, torch.Tensor]) -> bytes:
    """The state dict serialized exactly as `torch.save` writes a checkpoint."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def encode_csr_state(state: dict[str, torch.Tensor]) -> bytes:
    """Serialize a state dict with every tensor of rank >= 2 as CSR of its (rows, rest) matrix view.

    Conv kernels (O, C, kh, kw) become (O, C*kh*kw) matrices, the layout the CSR conv kernel multiplies with.
    Tensors of rank < 2 (biases, norms) are stored dense.
    """
    encoded: dict[str, Any] = {}
    for name, tensor in state.items():
        if tensor.dim() >= 2 and tensor.is_floating_point():
            csr = tensor.detach().reshape(tensor.shape[0], -1).to_sparse_csr()
            encoded[name] = {
                "shape": list(tensor.shape),
                "crow": csr.crow_indices().to(torch.int32),
                "col": csr.col_indices().to(torch.int32),
                "values": csr.values(),
            }
        else:
            encoded[name] = tensor.detach()
    return dense_bytes(encoded)


def decode_csr_state(blob: bytes) -> dict[str, torch.Tensor]:
    """Inverse of `encode_csr_state`: the dense state dict back, bit for bit."""
    encoded = torch.load(io.BytesIO(blob), weights_only=True)
    state: dict[str, torch.Tensor] = {}
    for name, item in encoded.items():
        if isinstance(item, dict):
            rows = item["shape"][0]
            columns = math.prod(item["shape"][1:])
            matrix = torch.sparse_csr_tensor(
                item["crow"].long(), item["col"].long(), item["values"], (rows, columns)
            ).to_dense()
            state[name] = matrix.reshape(item["shape"])
        else:
            state[name] = item
    return state


def size_report(model: nn.Module) -> dict[str, int]:
    """Parameters (total and non-zero) and the byte length of each encoding of `model`'s state."""
    state = {name: tensor.detach() for name, tensor in model.state_dict().items()}
    dense = dense_bytes(state)
    params = list(model.parameters())
    return {
        "params_total": sum(p.numel() for p in params),
        "params_nonzero": sum(int(torch.count_nonzero(p)) for p in params),
        "size_dense_bytes": len(dense),
        "size_csr_bytes": len(encode_csr_state(state)),
        "size_gzip_bytes": len(gzip.compress(dense, compresslevel=6, mtime=0)),
    }
