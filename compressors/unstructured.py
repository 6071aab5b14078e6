"""`prune.unstructured`: magnitude pruning of individual weights, run dense (zeros stored) or on CSR kernels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from compressors._checks import check_choice, check_fraction
from compressors._lazy import lazy_exports
from compressors.base import CompressorConfig
from compressors.presentation import CSR, SERIES, Presentation, percent
from compressors.registry import register

if TYPE_CHECKING:
    import torch
    from torch import nn

    from compressors._unstructured import keep_masks, prunable_layers, sparsity_facts
    from compressors.base import Compressed, Executable

__all__ = ["UnstructuredPruning", "keep_masks", "prunable_layers", "sparsity_facts"]

__getattr__ = lazy_exports(__name__, "compressors._unstructured", ("keep_masks", "prunable_layers", "sparsity_facts"))

_SCOPES = ("global", "layer")
_EXECUTIONS = ("dense", CSR)


@register("prune.unstructured")
@dataclass(frozen=True)
class UnstructuredPruning(CompressorConfig):
    """Zeroes the smallest-magnitude weights of every Conv2d and Linear.

    Attributes:
        sparsity: Fraction of prunable weights set to zero, in [0, 1); exactly round(sparsity * n) entries.
        scope: "global" ranks all prunable weights against one threshold (layers end up with different
            sparsities); "layer" prunes each layer to `sparsity`.
        execution: How `finalize` runs the result: "dense" keeps dense kernels over the stored zeros (no
            speed-up expected); "csr" swaps layers for CSR sparse-matmul modules.
    """

    execution_fields = ("execution",)
    presentation = Presentation(
        short="unstr", family="unstructured", headline=("sparsity",), formats={"sparsity": percent},
        csr_family="unstructured CSR", series=SERIES[0], csr_series=SERIES[1],
    )  # fmt: skip

    sparsity: float = 0.9
    scope: str = "global"
    execution: str = "dense"

    def __post_init__(self) -> None:
        # object.__setattr__ is the documented way to normalize fields of a frozen dataclass.
        object.__setattr__(self, "sparsity", check_fraction("sparsity", self.sparsity))
        check_choice("scope", self.scope, _SCOPES)
        check_choice("execution", self.execution, _EXECUTIONS)

    def apply(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor] = ()
    ) -> Compressed:
        """Prunes a deep copy of `model` by weight magnitude.

        Args:
            model: The dense model; not mutated.
            example_input: Unused: magnitude pruning needs no data.

        Returns:
            The pruned copy, kept-entry masks for each pruned weight, and info with `sparsity_achieved`
            (zeros counted over all prunable weights) and `layer_sparsity` per module name.

        Raises:
            ValueError: If the model has no Conv2d or Linear layer.
        """
        from compressors._unstructured import prune

        return prune(self.name, model, self.sparsity, self.scope)

    def finalize(self, model: nn.Module) -> Executable:
        """Returns the model as executed: as-is on dense kernels, or a copy with CSR layers.

        With execution "csr", every Linear and every Conv2d with groups == 1 and zero padding becomes a CSR
        module; other convs (grouped/depthwise, other padding modes, string padding) stay dense and `notes`
        says how many and why, since their time is then not a sparse-kernel time.

        Raises:
            CompressorLimit: With execution "csr", if the model's code reads a swapped layer's `.weight` instead of
                calling the layer (torchvision's ShiftedWindowAttention, torch's MultiheadAttention): found by an fx
                trace here, or, where fx cannot trace the model, raised by the CSR module at the first such read.
        """
        from compressors._unstructured import execute

        return execute(self.execution, model)
