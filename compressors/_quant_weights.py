"""The transform of `quant.bits`, `quant.binary` and `quant.cluster`: each weight encoded to codes and tables, and
the model's weight replaced by the decoded codes, so the two views agree bit for bit."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from compressors._unstructured import prunable_layers
from compressors.base import WeightCode

__all__ = [
    "Clustering", "check", "decode_weight", "encode_affine", "encode_clusters", "encode_sign", "kmeans_1d", "quantize",
]  # fmt: skip


def decode_weight(code: WeightCode) -> torch.Tensor:
    """Decodes stored codes back to the float weight; the kind is told by the table names.

    - {"scale", "zero_point"} (`quant.bits`): `(codes - zero_point[c]) * scale[c]` per output channel c.
    - {"alpha"} (`quant.binary`): `+alpha[c]` where the code is 1, `-alpha[c]` where it is 0.
    - {"codebook"} (`quant.cluster`): `codebook[codes]`.

    The compressors compute their models' weights with this very function, so a decoded stored weight equals
    the model's weight bit for bit.

    Args:
        code: The codes (weight-shaped, output channels first) and their tables.

    Returns:
        The weight, in the tables' dtype.

    Raises:
        ValueError: If the table names match no known kind.
    """
    kind = frozenset(code.tables)
    decoder = _DECODERS.get(kind)
    if decoder is None:
        known = "; ".join(", ".join(sorted(names)) for names in _DECODERS)
        raise ValueError(f"no decoder for tables {sorted(kind)}; known table sets: {known}")
    return decoder(code)


def _per_channel(table: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshapes a per-output-channel table so it broadcasts over a weight shaped like `like`."""
    return table.reshape(-1, *([1] * (like.dim() - 1)))


def _decode_affine(code: WeightCode) -> torch.Tensor:
    scale, zero_point = code.tables["scale"], code.tables["zero_point"]
    return (code.codes.to(scale.dtype) - _per_channel(zero_point, code.codes)) * _per_channel(scale, code.codes)


def _decode_sign(code: WeightCode) -> torch.Tensor:
    alpha = code.tables["alpha"]
    return (code.codes.to(alpha.dtype) * 2 - 1) * _per_channel(alpha, code.codes)


def _decode_codebook(code: WeightCode) -> torch.Tensor:
    # long, not uint8: indexing with a uint8 tensor would be read as a boolean mask.
    return code.tables["codebook"][code.codes.long()]


_DECODERS: dict[frozenset[str], Callable[[WeightCode], torch.Tensor]] = {
    frozenset({"scale", "zero_point"}): _decode_affine,
    frozenset({"alpha"}): _decode_sign,
    frozenset({"codebook"}): _decode_codebook,
}


@dataclass
class Clustering:
    """The result of `kmeans_1d`.

    Attributes:
        codebook: The centroids, sorted ascending.
        codes: Index of each value's nearest centroid (uint8), shaped like the input.
        iterations: Lloyd iterations run (0 = the initial linear grid).
    """

    codebook: torch.Tensor
    codes: torch.Tensor
    iterations: int


def kmeans_1d(values: torch.Tensor, k: int, max_iters: int) -> Clustering:
    """Clusters scalar values with Lloyd's k-means, started from a linear grid, as Deep Compression does.

    Han et al. found linear initialization (k points evenly spaced between the min and the max) beats random or
    density-based starts because it keeps centroids on the rare large weights that matter most; it also makes
    the result deterministic. In 1-D every cluster is a run of the sorted values between two centroid
    midpoints, so after one sort an iteration is a binary search per midpoint plus prefix-sum lookups
    (O(k log n)), and even a VGG fc layer needs no n x k distance matrix.

    Args:
        values: The values to cluster, any shape, floating point.
        k: Number of centroids, 1 to 256 (codes are uint8).
        max_iters: Most Lloyd iterations; stops earlier once no assignment changes. 0 keeps the linear grid.

    Returns:
        The sorted codebook (in the values' dtype), the code of each value (its nearest centroid; a value on
        a midpoint goes to the upper one) and the iterations run. A centroid that loses all its values keeps
        its position.
    """
    flat = values.detach().flatten()
    ordered = flat.sort().values
    # float64 prefix sums: float32 sums over millions of weights would drift.
    prefix = torch.cat((torch.zeros(1, dtype=torch.float64), ordered.double().cumsum(0)))
    codebook = torch.linspace(float(ordered[0]), float(ordered[-1]), k, dtype=torch.float64).to(flat.dtype)
    bounds = _cluster_bounds(ordered, codebook)
    iterations = 0
    while iterations < max_iters:
        iterations += 1
        counts = bounds[1:] - bounds[:-1]
        means = (prefix[bounds[1:]] - prefix[bounds[:-1]]) / counts.clamp(min=1)
        codebook = torch.where(counts > 0, means.to(flat.dtype), codebook).sort().values
        updated = _cluster_bounds(ordered, codebook)
        if torch.equal(updated, bounds):
            break
        bounds = updated
    codes = torch.bucketize(flat, _midpoints(codebook), right=True).to(torch.uint8).reshape(values.shape)
    return Clustering(codebook, codes, iterations)


def _midpoints(codebook: torch.Tensor) -> torch.Tensor:
    return (codebook[1:] + codebook[:-1]) / 2


def _cluster_bounds(ordered: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Start index in `ordered` of each centroid's run of nearest values, plus the end: k + 1 indices.

    Searching left is the mirror of `bucketize(..., right=True)`, so the runs match the final codes exactly.
    """
    inner = torch.searchsorted(ordered, _midpoints(codebook))
    return torch.cat((torch.zeros(1, dtype=inner.dtype), inner, torch.tensor([ordered.numel()])))


def check(name: str, model: nn.Module) -> None:
    """A weight quantizer's `check` (compressor `name`)."""
    if not prunable_layers(model):
        raise ValueError(f"{name} found no nn.Conv2d or nn.Linear layer to quantize")


def quantize(
    name: str, model: nn.Module, encode: Callable[[torch.Tensor], WeightCode]
) -> tuple[nn.Module, dict[str, WeightCode], float]:
    """A weight quantizer's `apply` (compressor `name`): a copy of `model` whose Conv2d and Linear weights are their
    codes by `encode`, decoded; the codes by parameter name; and the largest |weight - decoded|."""
    check(name, model)
    quantized = copy.deepcopy(model)
    codes: dict[str, WeightCode] = {}
    max_error = 0.0
    with torch.no_grad():
        for layer, module in prunable_layers(quantized):
            code = encode(module.weight.detach())
            decoded = decode_weight(code)
            max_error = max(max_error, float((decoded - module.weight).abs().max()))
            module.weight.copy_(decoded)
            codes[f"{layer}.weight" if layer else "weight"] = code
    return quantized, codes, max_error


def encode_affine(bits: int, scheme: str, weight: torch.Tensor) -> WeightCode:
    """`quant.bits`: per output channel, `bits`-bit codes by the affine or symmetric `scheme`."""
    rows = weight.reshape(weight.shape[0], -1)
    if scheme == "affine":
        levels = 2**bits - 1
        low, high = rows.amin(1).clamp(max=0), rows.amax(1).clamp(min=0)
        scale = (high - low) / levels
        # An all-zero channel has no range; any positive scale then codes it as exact zeros.
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        zero_point = (-low / scale).round().clamp(0, levels)
        low_code, high_code = 0, levels
    else:
        half = 2 ** (bits - 1)
        scale = rows.abs().amax(1) / (half - 1)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        zero_point = torch.full_like(scale, half)
        low_code, high_code = 1, 2 * half - 1
    q = (weight / _per_channel(scale, weight)).round() + _per_channel(zero_point, weight)
    codes = q.clamp(low_code, high_code).to(torch.uint8)
    return WeightCode(codes, bits, {"scale": scale, "zero_point": zero_point})


def encode_sign(weight: torch.Tensor) -> WeightCode:
    """`quant.binary`: the sign of each weight and each output channel's mean magnitude."""
    alpha = weight.abs().reshape(weight.shape[0], -1).mean(1)
    return WeightCode((weight >= 0).to(torch.uint8), 1, {"alpha": alpha})


def encode_clusters(bits: int, max_iters: int, weight: torch.Tensor) -> WeightCode:
    """`quant.cluster`: codes into a codebook of k-means centroids, 0.0 kept exact where the weight has zeros."""
    survivors = weight != 0
    if bool(survivors.all()) or bits == 1:
        clustering = kmeans_1d(weight, min(2**bits, weight.numel()), max_iters)
        return WeightCode(clustering.codes, bits, {"codebook": clustering.codebook})
    codes = torch.zeros(weight.shape, dtype=torch.uint8)
    codebook = weight.new_zeros(1)
    if bool(survivors.any()):
        values = weight[survivors]
        clustering = kmeans_1d(values, min(2**bits - 1, values.numel()), max_iters)
        codes[survivors] = clustering.codes + 1
        codebook = torch.cat([codebook, clustering.codebook])
    return WeightCode(codes, bits, {"codebook": codebook})
