"""prune.channel: channels really removed, the MAC budget met, the classifier kept, configs validated."""

from __future__ import annotations

import pytest
import torch
import torch_pruning as tp
import torchvision
from torch import nn

from compressors import CompressorLimit, get
from compressors.channel import ChannelPruning
from tests.compressors.conftest import MODELS, example_input


def _convs(model: nn.Module) -> list[nn.Conv2d]:
    return [module for module in model.modules() if isinstance(module, nn.Conv2d)]


def test_is_registered() -> None:
    assert get("prune.channel") is ChannelPruning


@pytest.mark.parametrize("model_name", sorted(MODELS))
@pytest.mark.parametrize("macs_removed", [0.5, 0.75])
def test_channels_removed_to_the_mac_budget(model_name: str, macs_removed: float) -> None:
    factory, shape = MODELS[model_name]
    model, x = factory(), example_input(shape)
    result = ChannelPruning(macs_removed=macs_removed).apply(model, x)
    info = result.info
    assert info["macs_removed_achieved"] == pytest.approx(macs_removed, abs=0.02)
    macs_pruned, params_pruned = tp.utils.count_ops_and_params(result.model, x)
    assert info["macs_pruned"] == int(macs_pruned)
    assert info["params_pruned"] == sum(p.numel() for p in result.model.parameters()) < info["params_dense"]
    assert info["macs_dense"] == int(tp.utils.count_ops_and_params(model, x)[0])
    assert 0 < info["pruning_ratio"] < 1
    assert sum(c.out_channels for c in _convs(result.model)) < sum(c.out_channels for c in _convs(model))
    assert result.masks == {}
    with torch.no_grad():
        assert result.model(x).shape == model(x).shape


def test_zero_budget_changes_nothing(mnist: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = mnist
    result = ChannelPruning(macs_removed=0.0).apply(model, x)
    assert result.info["pruning_ratio"] == 0.0
    assert result.info["params_pruned"] == result.info["params_dense"]
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), model(x))


def test_classifier_outputs_are_kept(mnist: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = mnist
    result = ChannelPruning(macs_removed=0.5).apply(model, x)
    assert result.model[9].out_features == 10
    assert result.model[7].out_features < 128


def test_a_final_conv_classifier_is_kept() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 10, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    x = torch.randn(1, 3, 16, 16)
    result = ChannelPruning(macs_removed=0.5).apply(model, x)
    assert result.model[4].out_channels == 10
    assert result.model[2].out_channels < 32


def test_batchnorm_statistics_and_training_mode_are_kept() -> None:
    model = MODELS["tiny_resnet"][0]()
    x = example_input(MODELS["tiny_resnet"][1])
    result = ChannelPruning(macs_removed=0.3).apply(model, x)
    assert result.model.training
    # Tracing runs forward passes; in training mode they would have moved the running means off zero.
    assert torch.equal(result.model.bn1.running_mean, torch.zeros_like(result.model.bn1.running_mean))


def test_finalize_runs_the_pruned_model_dense() -> None:
    model = nn.Linear(2, 2)
    executable = ChannelPruning().finalize(model)
    assert executable.model is model
    assert executable.executed_as == "dense (channels removed)"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"macs_removed": 1.0}, "macs_removed must be in [0, 1), got 1.0"),
        ({"macs_removed": -0.1}, "macs_removed must be in [0, 1), got -0.1"),
        ({"macs_removed": "abc"}, "macs_removed must be a number in [0, 1), got 'abc'"),
        ({"criterion": "l2"}, "criterion must be one of l1, bn_gamma, fpgm, apoz; got 'l2'"),
    ],
)
def test_invalid_fields_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        ChannelPruning(**kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message


@pytest.mark.slow
def test_imagenet_architectures_at_224(imagenet_case: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = imagenet_case
    result = ChannelPruning(macs_removed=0.5).apply(model, x)
    assert result.info["macs_removed_achieved"] == pytest.approx(0.5, abs=0.02)
    assert result.info["params_pruned"] < result.info["params_dense"]
    scripted = torch.jit.script(result.model.eval())
    with torch.no_grad():
        assert scripted(x).shape == (1, 1000)


def test_models_without_a_tensor_output_are_refused() -> None:
    class TwoHeads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.body(x), self.body(x)

    message = r"needs a model returning a \(batch, outputs, \.\.\.\) tensor, got tuple$"
    with pytest.raises(ValueError, match=message):
        ChannelPruning().apply(TwoHeads(), torch.randn(2, 4))


def _shufflenet() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.shufflenet_v2_x0_5().eval()


def test_a_channel_shuffle_is_a_known_limit_not_a_fault() -> None:
    with pytest.raises(CompressorLimit, match="torch-pruning cannot trace the channel shuffle") as raised:
        ChannelPruning(macs_removed=0.5).apply(_shufflenet(), torch.randn(1, 3, 64, 64))
    assert raised.value.action == "prune"
    assert isinstance(raised.value.__cause__, ZeroDivisionError)


def test_a_channel_shuffle_in_a_chain_names_its_stage() -> None:
    chain = get("chain")(stages="prune.channel(macs_removed=0.5)+quant.bits(bits=4)")
    with pytest.raises(CompressorLimit, match=r"channel shuffle .*\(stage 1, prune.channel\)$"):
        chain.apply(_shufflenet(), torch.randn(1, 3, 64, 64))
