"""Channel-pruning criteria rank channels the way their papers say: each removes the channels it calls least useful."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compressors import get

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
    )  # fmt: skip


def _kept_filters(original: nn.Conv2d, pruned: nn.Conv2d) -> set[int]:
    """Indices of `original`'s filters that survive in `pruned` (matched on the weights of input channel 0)."""
    kept = set()
    for row in pruned.weight[:, 0]:
        matches = [i for i, candidate in enumerate(original.weight[:, 0]) if torch.equal(candidate, row)]
        assert len(matches) == 1
        kept.add(matches[0])
    return kept


def _prune(model: nn.Module, criterion: str, calibration: list[torch.Tensor] | None = None) -> nn.Sequential:
    config = get("prune.channel")(macs_removed=0.7, criterion=criterion)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    result = config.apply(model, x, calibration or [])
    assert result.info["criterion"] == criterion
    return result.model


def test_bn_gamma_removes_the_channels_with_the_smallest_scales() -> None:
    model = _net()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([1.0, 0.01, 1.0, 0.02, 1.0, 0.03, 1.0, 0.04]))
    kept = _kept_filters(model[0], _prune(model, "bn_gamma")[0])
    assert kept and kept <= {0, 2, 4, 6}


def test_apoz_removes_channels_that_are_always_zero_after_relu() -> None:
    model = _net()
    with torch.no_grad():
        model[1].bias[[0, 1, 2, 3]] = -100.0  # these channels never pass the ReLU
    inputs = [torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    kept = _kept_filters(model[0], _prune(model, "apoz", inputs)[0])
    assert kept and kept <= {4, 5, 6, 7}


def test_fpgm_removes_replaceable_filters_where_l1_keeps_the_largest() -> None:
    model = _net()
    with torch.no_grad():
        big = torch.randn(3, 3, 3) * 5
        for i in range(6):
            model[0].weight[i] = big + 0.01 * i  # six near-copies of one large filter: the most replaceable
        model[0].weight[6:] *= 0.1
    kept_l1 = _kept_filters(model[0], _prune(model, "l1")[0])
    kept_fpgm = _kept_filters(model[0], _prune(model, "fpgm")[0])
    assert kept_l1 <= set(range(6))
    assert {6, 7} <= kept_fpgm


def test_bn_gamma_is_refused_for_a_model_without_batchnorm() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    with pytest.raises(ValueError, match="criterion bn_gamma .* no BatchNorm layer"):
        get("prune.channel")(criterion="bn_gamma").check(model)


def test_apoz_scores_do_not_leak_into_the_result_or_the_input() -> None:
    model = _net()
    pruned = _prune(model, "apoz")
    assert not any(hasattr(module, "_importance") for module in list(pruned.modules()) + list(model.modules()))


def test_unknown_criterion_lists_the_accepted_ones() -> None:
    with pytest.raises(ValueError, match="criterion must be one of l1, bn_gamma, fpgm, apoz; got 'taylor'"):
        get("prune.channel")(criterion="taylor")
