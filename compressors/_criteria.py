"""How channel pruning ranks channels: the structured criteria of the literature, as torch-pruning importances.

- "l1": L1 norm of each filter (Li et al. 2017).
- "bn_gamma": |gamma| of the BatchNorm after the conv (network slimming, Liu et al. 2017); needs BatchNorm.
- "fpgm": distance to the geometric median of the layer's filters (He et al. 2019): filters near it are the most
  replaceable by the others.
- "apoz": share of non-zero activations a channel feeds to the next layer, i.e. 1 - APoZ (Hu et al. 2016), measured
  on calibration inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch_pruning as tp
from torch import nn

from compressors._modes import eval_mode

__all__ = ["importance", "check_criterion", "record_activation_density", "forget_activation_density"]

# torch-pruning's ActivationImportance reads a per-input-channel score from this attribute of each consumer layer.
_SCORE = "_importance"


def importance(criterion: str) -> tp.importance.Importance:
    """A fresh torch-pruning importance for `criterion` (one of `compressors.channel.CRITERIA`)."""
    if criterion == "l1":
        return tp.importance.MagnitudeImportance(p=1)
    if criterion == "bn_gamma":
        return tp.importance.BNScaleImportance()
    if criterion == "fpgm":
        return tp.importance.FPGMImportance(p=2)
    return tp.importance.ActivationImportance(target_types=[nn.Conv2d, nn.Linear])


def check_criterion(criterion: str, model: nn.Module) -> None:
    """Raises ValueError when `criterion` has nothing to rank channels by in `model`."""
    if criterion == "bn_gamma" and not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        raise ValueError("criterion bn_gamma ranks channels by BatchNorm scales, and the model has no BatchNorm layer")


@torch.no_grad()
def record_activation_density(model: nn.Module, inputs: Sequence[torch.Tensor]) -> None:
    """Store on every conv and linear layer the share of non-zero values in each of its input channels.

    Averaged over all `inputs`; after a ReLU this is 1 - APoZ of the channel that produced them. Deep copies of
    `model` carry the scores, so the ratio search scores channels once rather than once per trial.
    """
    totals: dict[nn.Module, torch.Tensor] = {}

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        x = args[0]
        nonzero = (x != 0).float()
        density = (
            nonzero.mean(dim=(0, 2, 3)) if isinstance(module, nn.Conv2d) else nonzero.reshape(-1, x.shape[-1]).mean(0)
        )
        totals[module] = totals.get(module, torch.zeros_like(density)) + density

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles = [layer.register_forward_hook(hook) for layer in layers]
    try:
        with eval_mode(model):
            for batch in inputs:
                model(batch)
    finally:
        for handle in handles:
            handle.remove()
    for layer, total in totals.items():
        setattr(layer, _SCORE, total / len(inputs))


def forget_activation_density(model: nn.Module) -> None:
    """Remove the scores again: they are search state, not part of the pruned model."""
    for module in model.modules():
        if hasattr(module, _SCORE):
            delattr(module, _SCORE)
