"""arch.dsconv: the parameter formula, the pair's shape, exact rank-1 reproduction, MAC counts, validation."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from compressors import get
from compressors.dsconv import DepthwiseSeparable, standard_convs
from tests.compressors.conftest import example_input


def _small_net() -> nn.Module:
    """Two eligible convs (one with odd stride/padding/dilation, no bias) between ones that must stay."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, (3, 5), stride=(2, 1), padding=(2, 4), dilation=(2, 2), bias=False),
        nn.Conv2d(16, 16, 3, padding=1, groups=16),
        nn.Conv2d(16, 12, 1),
        nn.Conv2d(12, 6, 3, groups=2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 4),
    )


def _params(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def _macs(model: nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(x)
    return counter.get_total_flops() // 2


def _predicted_params(conv: nn.Conv2d) -> int:
    kernel = conv.kernel_size[0] * conv.kernel_size[1]
    bias = conv.out_channels if conv.bias is not None else 0
    return conv.in_channels * kernel + conv.in_channels * conv.out_channels + bias


def test_is_registered() -> None:
    assert get("arch.dsconv") is DepthwiseSeparable


def test_parameter_count_matches_the_formula() -> None:
    model = _small_net()
    result = DepthwiseSeparable().apply(model, torch.randn(2, 3, 12, 12))
    replaced = [model[0], model[2]]
    expected = _params(model) - sum(_params(conv) for conv in replaced) + sum(map(_predicted_params, replaced))
    assert _params(result.model) == expected == result.info["params_model_after"]
    assert result.info["convs_replaced"] == 2
    assert result.info["params_after"] == sum(map(_predicted_params, replaced)) == 3 * 9 + 3 * 8 + 8 + 8 * 15 + 8 * 16
    assert result.info["params_model_before"] == _params(model)


def test_the_pair_keeps_stride_padding_dilation_and_bias() -> None:
    model = _small_net()
    result = DepthwiseSeparable().apply(model, torch.randn(1, 3, 12, 12))
    for index in (0, 2):
        original, (depthwise, pointwise) = model[index], result.model[index]
        assert depthwise.groups == depthwise.in_channels == depthwise.out_channels == original.in_channels
        assert depthwise.weight.shape == (original.in_channels, 1, *original.kernel_size)
        assert (depthwise.stride, depthwise.padding, depthwise.dilation) == (
            original.stride,
            original.padding,
            original.dilation,
        )
        assert depthwise.bias is None
        assert pointwise.kernel_size == (1, 1) and pointwise.stride == (1, 1) and pointwise.padding == (0, 0)
        assert (pointwise.in_channels, pointwise.out_channels, pointwise.groups) == (
            original.in_channels,
            original.out_channels,
            1,
        )
        assert (pointwise.bias is None) == (original.bias is None)
    assert torch.equal(result.model[0][1].bias, model[0].bias)
    for index in (3, 4, 5, 8):
        assert type(result.model[index]) is type(model[index])
        assert torch.equal(result.model[index].weight, model[index].weight)


def test_a_conv_rank_one_per_input_channel_is_reproduced_exactly() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1)
    pointwise, depthwise = torch.randn(6, 4), torch.randn(4, 3, 3)
    with torch.no_grad():
        conv.weight.copy_(pointwise[:, :, None, None] * depthwise[None])
    x = torch.randn(2, 4, 9, 9)
    result = DepthwiseSeparable().apply(conv, x)
    assert isinstance(result.model, nn.Sequential)
    assert result.info["layers"][""]["approximation_error"] == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), conv(x), atol=1e-5, rtol=1e-5)


def test_the_reported_error_is_that_of_the_reconstructed_weight() -> None:
    model = _small_net()
    result = DepthwiseSeparable().apply(model, torch.randn(1, 3, 12, 12))
    depthwise, pointwise = result.model[2]
    with torch.no_grad():
        rebuilt = pointwise.weight[:, :, 0, 0, None, None] * depthwise.weight[None, :, 0]
        original = model[2].weight
        error = float((rebuilt - original).norm() / original.norm())
    assert result.info["layers"]["2"]["approximation_error"] == pytest.approx(error, rel=1e-4)
    assert 0 < error < 1


def test_macs_and_ratios_per_layer() -> None:
    model = _small_net()
    x = torch.randn(2, 3, 12, 12)
    info = DepthwiseSeparable().apply(model, x).info
    first = info["layers"]["0"]
    positions = 2 * 12 * 12
    assert first["macs_before"] == 8 * 3 * 9 * positions
    assert first["macs_after"] == (3 * 9 + 3 * 8) * positions
    assert first["theoretical_ratio"] == pytest.approx(1 / 8 + 1 / 9)
    assert first["params_ratio"] == first["params_after"] / first["params_before"]
    second = info["layers"]["2"]
    assert second["theoretical_ratio"] == pytest.approx(1 / 16 + 1 / 15)
    # No bias: measured params and MACs shrink by exactly the theoretical ratio.
    assert second["params_ratio"] == pytest.approx(second["theoretical_ratio"])
    assert second["macs_after"] / second["macs_before"] == pytest.approx(second["theoretical_ratio"])
    for key in ("params_before", "params_after", "macs_before", "macs_after"):
        assert info[key] == first[key] + second[key]
    result = DepthwiseSeparable().apply(model, x)
    assert _macs(model, x) - _macs(result.model, x) == info["macs_before"] - info["macs_after"]


def test_mobilenet_v2_only_the_stem_is_replaced() -> None:
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(num_classes=10)
    x = example_input((1, 3, 64, 64))
    result = DepthwiseSeparable().apply(model, x)
    stem = model.features[0][0]
    assert [name for name, _ in standard_convs(model)] == ["features.0.0"]
    assert result.info["convs_replaced"] == 1
    assert _params(result.model) == _params(model) - 3 * 32 * 9 + _predicted_params(stem)
    before = {name: conv for name, conv in model.named_modules() if isinstance(conv, nn.Conv2d)}
    after = {name: conv for name, conv in result.model.named_modules() if isinstance(conv, nn.Conv2d)}
    del before["features.0.0"]
    assert set(after) == set(before) | {"features.0.0.0", "features.0.0.1"}
    for name, conv in before.items():
        assert torch.equal(after[name].weight, conv.weight), name
    with torch.no_grad():
        assert result.model.eval()(x).shape == (1, 10)


def test_skip_first_keeps_the_first_conv() -> None:
    model = _small_net()
    result = DepthwiseSeparable(skip_first=True).apply(model, torch.randn(1, 3, 12, 12))
    assert isinstance(result.model[0], nn.Conv2d)
    assert torch.equal(result.model[0].weight, model[0].weight)
    assert isinstance(result.model[2], nn.Sequential)
    assert list(result.info["layers"]) == ["2"]


def test_skip_first_skips_the_first_conv_even_when_it_does_not_qualify() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3))
    assert [name for name, _ in standard_convs(model, skip_first=True)] == ["1"]
    assert [name for name, _ in standard_convs(model, skip_first=False)] == ["1"]


NO_CONV_MESSAGE = (
    "no standard KxK convolution (groups=1, in_channels>1, kernel>1) to replace; arch.dsconv needs at least one"
)


@pytest.mark.parametrize(
    ("model", "config"),
    [
        (nn.Sequential(nn.Conv2d(4, 4, 3, groups=4), nn.Conv2d(4, 8, 1), nn.Conv2d(8, 8, 5, groups=8)), {}),
        (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.LazyLinear(2)), {}),
        (nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 1)), {"skip_first": True}),
        (nn.Linear(4, 4), {}),
    ],
)
def test_models_without_a_standard_conv_are_refused(model: nn.Module, config: dict[str, bool]) -> None:
    with pytest.raises(ValueError) as caught:
        DepthwiseSeparable(**config).check(model)
    assert str(caught.value) == NO_CONV_MESSAGE
    with pytest.raises(ValueError, match="^no standard KxK convolution"):
        DepthwiseSeparable(**config).apply(model, torch.randn(1, 4, 8, 8))


def test_finalize_runs_the_pairs_dense() -> None:
    model = nn.Linear(2, 2)
    executable = DepthwiseSeparable().finalize(model)
    assert executable.model is model
    assert executable.executed_as == "dense (depthwise + pointwise convs)"


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_skip_first_must_be_a_bool(value: object) -> None:
    with pytest.raises(ValueError) as caught:
        DepthwiseSeparable(skip_first=value)  # type: ignore[arg-type]
    assert str(caught.value) == f"skip_first must be true or false, got {value!r}"


@pytest.mark.slow
def test_imagenet_architectures_at_224(imagenet_case: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = imagenet_case
    result = DepthwiseSeparable().apply(model, x)
    replaced = [conv for _, conv in standard_convs(model)]
    assert result.info["convs_replaced"] == len(replaced)
    assert _params(result.model) == (
        _params(model) - sum(_params(conv) for conv in replaced) + sum(map(_predicted_params, replaced))
    )
    assert _macs(model, x) - _macs(result.model, x) == result.info["macs_before"] - result.info["macs_after"]
    scripted = torch.jit.script(result.model.eval())
    with torch.no_grad():
        assert scripted(x).shape == (1, 1000)
