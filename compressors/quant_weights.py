"""`quant.bits`, `quant.binary`, `quant.cluster`: weight-only quantization, simulated on fp32 kernels.

Each compressor hands back two views of the same weights: the model, whose Conv2d and Linear weights are
replaced by their decoded (dequantized) values so any fp32 runtime executes and fine-tunes it, and the integer
codes with their float tables, which is how the weights are stored and what the size measurement encodes. The
model's weights are computed by `decode_weight` from the codes, so the two views agree bit for bit. Biases and
BatchNorm stay fp32: they are a tiny share of the bytes, and quantizing them costs accuracy for nothing.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import TYPE_CHECKING, Any, ClassVar

from compressors._checks import check_choice
from compressors._lazy import lazy_exports
from compressors.base import Compressed, CompressorConfig, Executable
from compressors.presentation import Presentation, template
from compressors.registry import register

if TYPE_CHECKING:
    import torch
    from torch import nn

    from compressors._quant_weights import Clustering, decode_weight, kmeans_1d
    from compressors.base import WeightCode

__all__ = ["BinaryWeights", "Clustering", "WeightClustering", "WeightQuantization", "decode_weight", "kmeans_1d"]

__getattr__ = lazy_exports(__name__, "compressors._quant_weights", ("Clustering", "decode_weight", "kmeans_1d"))

_SCHEMES = ("affine", "symmetric")
_QUANT_BITS = (2, 3, 4, 6, 8)
_CLUSTER_BITS = (1, 2, 3, 4, 5, 6, 7, 8)
_NOTES = "weights are stored quantized but run as fp32 on dense kernels, so no speedup is claimed"
_BITS = template("{}-bit")


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
        from compressors._quant_weights import check

        check(self.name, model)

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
        from compressors._quant_weights import quantize

        quantized, codes, max_error = quantize(self.name, model, self._encode)
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
    presentation = Presentation(
        short="quant", family="quantization", headline=("bits",), formats={"bits": _BITS}, bit_codes=True
    )

    bits: int = 4
    scheme: str = "affine"

    def __post_init__(self) -> None:
        # object.__setattr__ is the documented way to normalize fields of a frozen dataclass.
        object.__setattr__(self, "bits", _check_int("bits", self.bits, _QUANT_BITS))
        check_choice("scheme", self.scheme, _SCHEMES)

    def _encode(self, weight: torch.Tensor) -> WeightCode:
        from compressors._quant_weights import encode_affine

        return encode_affine(self.bits, self.scheme, weight)

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
    presentation = Presentation(short="binary", family="quantization", bit_codes=True)

    def _encode(self, weight: torch.Tensor) -> WeightCode:
        from compressors._quant_weights import encode_sign

        return encode_sign(weight)

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
    presentation = Presentation(
        short="cluster", family="quantization", headline=("bits",), formats={"bits": _BITS}, bit_codes=True
    )

    bits: int = 4
    max_iters: int = 30

    def __post_init__(self) -> None:
        # object.__setattr__ is the documented way to normalize fields of a frozen dataclass.
        object.__setattr__(self, "bits", _check_int("bits", self.bits, _CLUSTER_BITS))
        if isinstance(self.max_iters, bool) or not isinstance(self.max_iters, Integral) or self.max_iters < 1:
            raise ValueError(f"max_iters must be an integer >= 1, got {self.max_iters!r}")
        object.__setattr__(self, "max_iters", int(self.max_iters))

    def _encode(self, weight: torch.Tensor) -> WeightCode:
        from compressors._quant_weights import encode_clusters

        return encode_clusters(self.bits, self.max_iters, weight)

    def _facts(self, codes: dict[str, WeightCode]) -> dict[str, Any]:
        sizes = {name: code.tables["codebook"].numel() for name, code in codes.items()}
        return {"bits": self.bits, "codebook_sizes": sizes}
