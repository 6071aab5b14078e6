"""Model compressors: `nn.Module` in, `nn.Module` out, each a frozen config registered by name.

Importing this package registers every built-in compressor, so `names()` lists them all.
"""

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
from compressors._modules import reinitialize
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
from compressors.registry import UnknownCompressorError, get, names, register

__all__ = [
    "Compressed",
    "CompressorConfig",
    "CompressorLimit",
    "Executable",
    "Fit",
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

del chain, channel, dsconv, early_exit, identity, iterative, lowrank, quant_int8, quant_weights, slimmable, unstructured
