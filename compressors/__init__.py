"""Model compressors: `nn.Module` in, `nn.Module` out, each a frozen config registered by name.

Importing this package registers every built-in compressor, so `names()` lists them all. It imports no torch: the
config classes, the registry and each compressor's presentation are torch-free, and the code that transforms a model
is imported the first time a config applies or finalizes one (`reinitialize` likewise, on first use).
"""

from typing import TYPE_CHECKING

from compressors import (
    chain,
    channel,
    dsconv,
    early_exit,
    identity,
    iterative,
    lowrank,
    quant_int8,
    quant_weights,
    slimmable,
    unstructured,
)  # fmt: skip
from compressors._checks import parse_value
from compressors._lazy import lazy_exports
from compressors.base import (
    Compressed,
    CompressorConfig,
    CompressorLimit,
    Executable,
    Fit,
    Training,
    TrainingFacts,
    TrainLoss,
    WeightCode,
)  # fmt: skip
from compressors.presentation import Presentation
from compressors.registry import UnknownCompressorError, get, names, register

if TYPE_CHECKING:
    from compressors._modules import reinitialize

__all__ = [
    "Compressed",
    "CompressorConfig",
    "CompressorLimit",
    "Executable",
    "Fit",
    "Presentation",
    "Training",
    "TrainingFacts",
    "TrainLoss",
    "UnknownCompressorError",
    "WeightCode",
    "get",
    "names",
    "parse_value",
    "reinitialize",
    "register",
]

__getattr__ = lazy_exports(__name__, "compressors._modules", ("reinitialize",))

del chain, channel, dsconv, early_exit, identity, iterative, lowrank, quant_int8, quant_weights, slimmable, unstructured
