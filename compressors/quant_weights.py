"""`quant.bits`, `quant.binary`, `quant.cluster`: weight-only quantization, simulated on fp32 kernels.

Each compressor hands back two views of the same weights: the model, whose Conv2d and Linear weights are
replaced by their decoded (dequantized) values so any fp32 runtime executes and fine-tunes it, and the integer
codes with their float tables, which is how the weights are stored and what the size measurement encodes. The
model's weights are computed by `decode_weight` from the codes, so the two views agree bit for bit. Biases and
BatchNorm stay fp32: they are a tiny share of the bytes, and quantizing them costs accuracy for nothing.
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any, ClassVar

import torch
from torch import nn

from compressors._checks import check_choice
from compressors.base import Compressed, CompressorConfig, Executable, WeightCode
from compressors.registry import register
from compressors.unstructured import prunable_layers

__all__ = ["BinaryWeights", "Clustering", "WeightClustering", "WeightQuantization", "decode_weight", "kmeans_1d"]

_SCHEMES = ("affine", "symmetric")
_QUANT_BITS = (2, 3, 4, 6, 8)
_CLUSTER_BITS = (1, 2, 3, 4, 5, 6, 7, 8)
_NOTES = "weights are stored quantized but run as fp32 on dense kernels, so no speedup is claimed"


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


def _check_int(field: str, value: object, accepted: Sequence[int]) -> int:
    """Checks that `value` is an integer among `accepted` and returns it as an int (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) not in accepted:
        raise ValueError(f"{field} must be one of {', '.join(map(str, accepted))}; got {value!r}")
    return int(value)


@dataclass(frozen=True)
class _WeightQuantizer(CompressorConfig):
    """Shared transform: encode every Conv2d/Linear weight, then put its decoded value in a copy of the model."""

    executed_as: ClassVar[str]

    @abc.abstractmethod
    def _encode(self, weight: torch.Tensor) -> WeightCode:
        """Returns the stored form of one weight (output channels first)."""

    @abc.abstractmethod
    def _facts(self, codes: dict[str, WeightCode]) -> dict[str, Any]:
        """JSON-native facts for `info` besides the quantization error."""

    def check(self, model: nn.Module) -> None:
        """Raises ValueError if `model` has no Conv2d or Linear weight to quantize."""
        if not prunable_layers(model):
            raise ValueError(f"{self.name} found no nn.Conv2d or nn.Linear layer to quantize")

    def apply(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor] = ()
    ) -> Compressed:
        """Quantizes the weight of every Conv2d and Linear of a deep copy of `model`.

        Args:
            model: The dense model; not mutated.
            example_input: Unused: weight-only quantization needs no data.
            calibration: Unused, for the same reason.

        Returns:
            The copy with decoded weights (plain modules, so it scripts and fine-tunes as before), no masks,
            the codes of each weight by parameter name, and info with `max_abs_error` (the largest
            |weight - decoded| over all layers) plus the compressor's own facts.

        Raises:
            ValueError: If the model has no Conv2d or Linear layer.
        """
        self.check(model)
        quantized = copy.deepcopy(model)
        codes: dict[str, WeightCode] = {}
        max_error = 0.0
        with torch.no_grad():
            for name, module in prunable_layers(quantized):
                code = self._encode(module.weight.detach())
                decoded = decode_weight(code)
                max_error = max(max_error, float((decoded - module.weight).abs().max()))
                module.weight.copy_(decoded)
                codes[f"{name}.weight" if name else "weight"] = code
        info = {**self._facts(codes), "max_abs_error": max_error}
        return Compressed(model=quantized, masks={}, info=info, codes=codes)

    def finalize(self, model: nn.Module) -> Executable:
        """Returns the model as is: the decoded weights run on fp32 kernels, labelled as simulated."""
        return Executable(model, executed_as=self.executed_as, notes=_NOTES)


@register("quant.bits")
@dataclass(frozen=True)
class WeightQuantization(_WeightQuantizer):
    """k-bit uniform quantization of each output channel's weights.

    Attributes:
        bits: Bits per weight, one of 2, 3, 4, 6, 8.
        scheme: "affine" maps each channel's [min(w, 0), max(w, 0)] onto codes 0 .. 2**bits - 1 with an integer
            zero point, so the whole range is used and a pruned model's zeros stay exact zeros. "symmetric"
            uses a scale of max|w| / (2**(bits-1) - 1) and codes offset by 2**(bits-1), so one code is wasted
            but dequantization needs no zero point (what int8 kernels assume); codes still lie in [0, 2**bits).
    """

    executed_as = "simulated: dequantized fp32 weights (no k-bit kernel)"

    bits: int = 4
    scheme: str = "affine"

    def __post_init__(self) -> None:
        # object.__setattr__ is the documented way to normalize fields of a frozen dataclass.
        object.__setattr__(self, "bits", _check_int("bits", self.bits, _QUANT_BITS))
        check_choice("scheme", self.scheme, _SCHEMES)

    def _encode(self, weight: torch.Tensor) -> WeightCode:
        rows = weight.reshape(weight.shape[0], -1)
        if self.scheme == "affine":
            levels = 2**self.bits - 1
            low, high = rows.amin(1).clamp(max=0), rows.amax(1).clamp(min=0)
            scale = (high - low) / levels
            # An all-zero channel has no range; any positive scale then codes it as exact zeros.
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
            zero_point = (-low / scale).round().clamp(0, levels)
            low_code, high_code = 0, levels
        else:
            half = 2 ** (self.bits - 1)
            scale = rows.abs().amax(1) / (half - 1)
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
            zero_point = torch.full_like(scale, half)
            low_code, high_code = 1, 2 * half - 1
        q = (weight / _per_channel(scale, weight)).round() + _per_channel(zero_point, weight)
        codes = q.clamp(low_code, high_code).to(torch.uint8)
        return WeightCode(codes, self.bits, {"scale": scale, "zero_point": zero_point})

    def _facts(self, codes: dict[str, WeightCode]) -> dict[str, Any]:
        return {"bits": self.bits, "scheme": self.scheme}


@register("quant.binary")
@dataclass(frozen=True)
class BinaryWeights(_WeightQuantizer):
    """1-bit weights, BinaryConnect/XNOR-Net style: w ~ sign(w) * alpha_c.

    alpha_c = mean |w| over output channel c is the scale XNOR-Net derives as the L2-optimal one for sign
    weights. Codes are 1 where w >= 0 (so zeros map to +alpha_c) and 0 elsewhere.
    """

    executed_as = "simulated: ±alpha fp32 weights (no 1-bit kernel)"

    def _encode(self, weight: torch.Tensor) -> WeightCode:
        alpha = weight.abs().reshape(weight.shape[0], -1).mean(1)
        return WeightCode((weight >= 0).to(torch.uint8), 1, {"alpha": alpha})

    def _facts(self, codes: dict[str, WeightCode]) -> dict[str, Any]:
        return {"bits": 1}


@register("quant.cluster")
@dataclass(frozen=True)
class WeightClustering(_WeightQuantizer):
    """Deep Compression weight sharing: each layer's weights snap to a codebook of 2**bits k-means centroids.

    A layer holding exact zeros (a pruned one) keeps them: code 0 is reserved for 0.0 and the surviving weights
    share the other 2**bits - 1 centroids, as Han et al. cluster only the survivors, so pruning followed by
    clustering stays sparse. A layer with fewer weights than its centroids gets one centroid per weight.

    Attributes:
        bits: Bits per code, 1 to 8; the codebook has 2**bits entries per layer.
        max_iters: Most Lloyd iterations per layer, at least 1; iteration stops early once assignments settle.
    """

    executed_as = "simulated: codebook-decoded fp32 weights (no lookup kernel)"

    bits: int = 4
    max_iters: int = 30

    def __post_init__(self) -> None:
        # object.__setattr__ is the documented way to normalize fields of a frozen dataclass.
        object.__setattr__(self, "bits", _check_int("bits", self.bits, _CLUSTER_BITS))
        if isinstance(self.max_iters, bool) or not isinstance(self.max_iters, Integral) or self.max_iters < 1:
            raise ValueError(f"max_iters must be an integer >= 1, got {self.max_iters!r}")
        object.__setattr__(self, "max_iters", int(self.max_iters))

    def _encode(self, weight: torch.Tensor) -> WeightCode:
        survivors = weight != 0
        if bool(survivors.all()) or self.bits == 1:
            clustering = kmeans_1d(weight, min(2**self.bits, weight.numel()), self.max_iters)
            return WeightCode(clustering.codes, self.bits, {"codebook": clustering.codebook})
        codes = torch.zeros(weight.shape, dtype=torch.uint8)
        codebook = weight.new_zeros(1)
        if bool(survivors.any()):
            values = weight[survivors]
            clustering = kmeans_1d(values, min(2**self.bits - 1, values.numel()), self.max_iters)
            codes[survivors] = clustering.codes + 1
            codebook = torch.cat([codebook, clustering.codebook])
        return WeightCode(codes, self.bits, {"codebook": codebook})

    def _facts(self, codes: dict[str, WeightCode]) -> dict[str, Any]:
        sizes = {name: code.tables["codebook"].numel() for name, code in codes.items()}
        return {"bits": self.bits, "codebook_sizes": sizes}
