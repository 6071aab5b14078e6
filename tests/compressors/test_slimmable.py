"""`dynamic.width`: each width is the model built at that width, one parameter set serves all, training helps."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from bench.measure.accuracy import top1
from bench.measure.flops import macs_report
from bench.models.data import load_dataset
from bench.models.registry import resolve_model
from bench.models.training import fit, train
from compressors import CompressorLimit, Fit, Training, TrainingFacts, TrainLoss, get
from compressors._slim_modules import Slimmable, SwitchableNorm
from compressors.slimmable import SlimmableWidth, inplace_distillation, labels_at_every_width
from tests.compressors.conftest import example_input

WIDTHS = (0.25, 0.5, 0.75, 1.0)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    # Training on a shared machine: torch's two intra-op threads wait on each other while another process holds a
    # core, and a seconds-long training takes a minute.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def mnist_cnn_at(c1: int, c2: int, hidden: int) -> nn.Sequential:
    """mnist_cnn built directly with these channel counts."""
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * 7 * 7, hidden), nn.ReLU(), nn.Linear(hidden, 10),
    )  # fmt: skip


def digits_cnn_at(c1: int, c2: int, hidden: int) -> nn.Sequential:
    """digits_cnn built directly with these channel counts."""
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * 4 * 4, hidden), nn.ReLU(), nn.Linear(hidden, 10),
    )  # fmt: skip


def normed_at(c1: int, hidden: int) -> nn.Sequential:
    """A small net with BatchNorm after a conv and after a linear layer, built with these widths."""
    return nn.Sequential(
        nn.Conv2d(3, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(c1, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, 5),
    )  # fmt: skip


# model -> (builder at given channels, input shape, channels per width: round(w * channels), halves up).
CASES = {
    "mnist_cnn": (mnist_cnn_at, (1, 1, 28, 28), {0.25: (8, 16, 32), 0.5: (16, 32, 64), 0.75: (24, 48, 96),
                                                 1.0: (32, 64, 128)}),
    "digits_cnn": (digits_cnn_at, (1, 1, 8, 8), {0.25: (4, 8, 16), 0.5: (8, 16, 32), 0.75: (12, 24, 48),
                                                 1.0: (16, 32, 64)}),
    "normed": (normed_at, (2, 3, 12, 12), {0.25: (3, 6), 0.5: (6, 12), 0.75: (9, 18), 1.0: (12, 24)}),
}  # fmt: skip


def _reference(name: str) -> nn.Sequential:
    builder, _, channels = CASES[name]
    torch.manual_seed(0)
    model = builder(*channels[1.0])
    with torch.no_grad():  # statistics and affine terms that differ per channel, so a wrong slice shows
        for module in model.modules():
            if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return model.eval()


def _params(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def _shapes(model: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(key, tuple(value.shape)) for key, value in model.state_dict().items()]


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("width", WIDTHS)
def test_each_width_has_the_params_and_macs_of_a_model_built_at_it(name: str, width: float) -> None:
    builder, shape, channels = CASES[name]
    x = example_input(shape)
    built = builder(*channels[width])
    compressed = SlimmableWidth(width=width).apply(_reference(name), x)
    executable = SlimmableWidth(width=width).finalize(compressed.model)
    assert _shapes(executable.model) == _shapes(built)
    assert _params(executable.model) == _params(built)
    assert macs_report(executable.model, x) == macs_report(built, x)
    slim = compressed.model
    assert isinstance(slim, Slimmable)
    slim.width = width  # the slimmable model's own forward at that width does the same MACs
    assert macs_report(slim, x)["macs_dense"] == macs_report(built, x)["macs_dense"]
    assert compressed.info["per_width"][repr(width)]["params"] == _params(built)


@pytest.mark.parametrize("name", CASES)
def test_the_narrow_model_runs_what_the_slimmable_one_runs_at_its_width(name: str) -> None:
    _, shape, _ = CASES[name]
    x = example_input(shape)
    slim = SlimmableWidth().apply(_reference(name), x).model
    assert isinstance(slim, Slimmable)
    for width in WIDTHS:
        narrow = SlimmableWidth(width=width).finalize(slim).model
        scripted = torch.jit.script(narrow)
        with torch.no_grad():
            expected = slim.run(x, width)
            torch.testing.assert_close(narrow(x), expected)
            torch.testing.assert_close(scripted(x), expected)


def test_the_full_width_is_the_reference() -> None:
    reference = _reference("normed")
    x = example_input(CASES["normed"][1])
    slim = SlimmableWidth().apply(reference, x).model
    with torch.no_grad():
        torch.testing.assert_close(slim(x), reference(x))


def test_one_parameter_set_serves_every_width() -> None:
    reference = _reference("mnist_cnn")
    x = example_input(CASES["mnist_cnn"][1])
    compressed = SlimmableWidth().apply(reference, x)
    slim = compressed.model
    assert isinstance(slim, Slimmable)
    # The stored model is the full-width weights, once: no copy per width.
    assert _shapes(slim) == [(f"layers.{key}", shape) for key, shape in _shapes(reference)]
    assert compressed.info["params_shared"] == _params(reference)
    narrow = slim.narrow(0.25)
    assert torch.equal(narrow[3].weight, slim.layers[3].weight[:16, :8])
    assert torch.equal(narrow[7].weight, slim.layers[7].weight[:32, : 16 * 49])
    assert torch.equal(narrow[9].weight, slim.layers[9].weight[:, :32])
    # A step at the narrowest width moves the full width's first channels, and only those.
    before = slim.layers[3].weight.detach().clone()
    optimizer = torch.optim.SGD(slim.parameters(), lr=0.1)
    slim.run(x, 0.25).square().sum().backward()
    optimizer.step()
    after = slim.layers[3].weight.detach()
    assert not torch.equal(after[:16, :8], before[:16, :8])
    assert torch.equal(after[16:], before[16:]) and torch.equal(after[:, 8:], before[:, 8:])


def test_each_width_has_its_own_batchnorm() -> None:
    slim = SlimmableWidth().apply(_reference("normed"), example_input((2, 3, 12, 12))).model
    assert isinstance(slim, Slimmable)
    norm = slim.layers[1]
    assert isinstance(norm, SwitchableNorm)
    assert [n.num_features for n in norm.norms] == [3, 6, 9, 12]
    before = [n.running_mean.clone() for n in norm.norms]
    slim.train()
    slim.run(torch.randn(8, 3, 12, 12), 0.5)
    changed = [not torch.equal(n.running_mean, b) for n, b in zip(norm.norms, before, strict=True)]
    assert changed == [False, True, False, False]
    # Warm start: each width's norm began as the reference's first channels.
    torch.testing.assert_close(before[1], _reference("normed")[1].running_mean[:6])


def _fit_on(data_name: str) -> tuple[Fit, list[int]]:
    """The suite's loop over a bundled training split, as a `Fit`, and the budgets it was called with."""
    split = load_dataset(data_name).train
    calls: list[int] = []

    def train_for(model: nn.Module, steps: int, *, masks=None, loss: TrainLoss | None = None, seed=None) -> None:
        calls.append(steps)
        fit(model, split, steps, masks=masks, loss=loss, seed=seed or 0)

    return train_for, calls


@pytest.fixture(scope="module")
def digits_reference() -> nn.Module:
    spec = resolve_model("digits_cnn")
    assert spec.recipe is not None
    return train(spec.build(), load_dataset("digits").train, spec.recipe)


@pytest.mark.parametrize("loss", ["labels", "inplace"])
def test_training_lifts_the_narrow_widths_over_slicing_the_reference(digits_reference: nn.Module, loss: str) -> None:
    test = load_dataset("digits").test
    train_for, calls = _fit_on("digits")
    training = Training(steps=60, seed=0, fit=train_for, evaluate=lambda model: top1(model, test), initial_state=None,
                        rewound_state=None, reference_steps=None)  # fmt: skip
    config = SlimmableWidth(loss=loss)
    x = example_input((1, 1, 8, 8))
    compressed = config.apply_trained(digits_reference, x, (), training)
    assert calls == [60]
    per_width = compressed.info["per_width"]
    trained = {width: top1(SlimmableWidth(width=width).finalize(compressed.model).model, test) for width in WIDTHS}
    assert per_width["1.0"]["top1_sliced"] == top1(digits_reference, test)
    for width in (0.25, 0.5):
        assert trained[width] > per_width[repr(width)]["top1_sliced"] + 0.1, (width, trained, per_width)
    assert trained[1.0] > per_width["1.0"]["top1_sliced"] - 0.03
    assert compressed.info["training"] == {"steps": 60, "seed": 0, "loss": loss, "widths_per_step": 4}
    assert json.loads(json.dumps(compressed.info)) == compressed.info


@pytest.mark.parametrize("loss", [labels_at_every_width, inplace_distillation])
def test_a_loss_trains_every_width(loss: TrainLoss) -> None:
    slim = SlimmableWidth().apply(_reference("normed"), example_input((2, 3, 12, 12))).model
    slim.train()
    loss(slim, torch.randn(4, 3, 12, 12), torch.tensor([0, 1, 2, 3])).backward()
    norm = slim.layers[1]
    assert isinstance(norm, SwitchableNorm)
    assert all(n.weight.grad is not None and n.weight.grad.abs().sum() > 0 for n in norm.norms)


def test_config_round_trips_in_one_canonical_form() -> None:
    config = SlimmableWidth(widths="1/0.5/0.25", width=0.5, loss="inplace")
    assert config.to_dict() == {"widths": "0.25/0.5/1.0", "width": 0.5, "loss": "inplace"}
    assert SlimmableWidth.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert SlimmableWidth(widths="0.25/0.5/1.0", width=1) == SlimmableWidth(widths="0.25/0.50/1.00", width=1.0)
    assert get("dynamic.width") is SlimmableWidth


def test_the_widths_of_one_set_share_one_training() -> None:
    keys = {SlimmableWidth(width=width).training_key() for width in WIDTHS}
    assert len(keys) == 1
    assert SlimmableWidth(loss="inplace").training_key() not in keys
    assert SlimmableWidth(widths="0.5/1.0").training_key() not in keys


_FORM = "widths in (0, 1] joined by '/', one of them 1.0, e.g. '0.25/0.5/0.75/1.0'"
BAD = {
    "above one": ({"widths": "0.5/1.5"}, "widths must each be in (0, 1]; got 1.5 in '0.5/1.5'"),
    "zero": ({"widths": "0/1.0"}, "widths must each be in (0, 1]; got 0 in '0/1.0'"),
    "negative": ({"widths": "-0.5/1"}, "widths must each be in (0, 1]; got -0.5 in '-0.5/1'"),
    "nan": ({"widths": "nan/1"}, "widths must each be in (0, 1]; got nan in 'nan/1'"),
    "empty": ({"widths": ""}, f"widths must be {_FORM}; got ''"),
    "a grid value": ({"widths": 0.5}, f"widths must be {_FORM}; got 0.5"),
    "not a number": ({"widths": "0.5/x/1"}, f"widths must be {_FORM}; 'x' in '0.5/x/1' is not a number"),
    "trailing separator": ({"widths": "0.5/1/"}, f"widths must be {_FORM}; '' in '0.5/1/' is not a number"),
    "twice": ({"widths": "0.5/0.50/1"}, "widths lists 0.5 twice in '0.5/0.50/1'"),
    "no full width": ({"widths": "0.25/0.5", "width": 0.5},
                      "widths must include 1.0, the reference's own width that the others slice; got '0.25/0.5'"),
    "width not trained": ({"width": 0.3}, "width must be one of widths 0.25/0.5/0.75/1.0; got 0.3"),
    "width above one": ({"width": 1.5}, "width must be in (0, 1], one of widths 0.25/0.5/0.75/1.0; got 1.5"),
    "width zero": ({"width": 0}, "width must be in (0, 1], one of widths 0.25/0.5/0.75/1.0; got 0"),
    "width a bool": ({"width": True}, "width must be in (0, 1], one of widths 0.25/0.5/0.75/1.0; got True"),
    "width text": ({"width": "half"}, "width must be in (0, 1], one of widths 0.25/0.5/0.75/1.0; got 'half'"),
    "unknown loss": ({"loss": "sandwich"}, "loss must be one of labels, inplace; got 'sandwich'"),
}  # fmt: skip


@pytest.mark.parametrize("params, message", BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_line(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        SlimmableWidth.from_dict(params)
    assert str(caught.value) == message


def test_widths_a_model_cannot_tell_apart_are_refused() -> None:
    # digits_cnn's 16/32/64 channels keep 4/8/16 at both 0.25 and 0.255.
    with pytest.raises(ValueError) as caught:
        SlimmableWidth(widths="0.25/0.255/1").check(resolve_model("digits_cnn").build())
    assert str(caught.value) == (
        "widths 0.25 and 0.255 keep the same channels of every layer; list widths that differ on this model"
    )
    SlimmableWidth(widths="0.25/0.255/1").check(resolve_model("mnist_cnn").build())  # 128 * 0.255 rounds to 33


def test_a_cell_without_training_is_refused() -> None:
    SlimmableWidth().check_training(TrainingFacts(steps=1, reference_steps=None, initial_weights=False))
    with pytest.raises(ValueError) as caught:
        SlimmableWidth().check_training(TrainingFacts(steps=0, reference_steps=675, initial_weights=True))
    assert str(caught.value) == "dynamic.width trains its widths together: it needs finetune_steps > 0, got 0"


LIMITS = {
    "not sequential": (lambda: resolve_model("resnet18").build(), "dynamic.width slims an nn.Sequential, got ResNet"),
    "grouped conv": (lambda: nn.Sequential(nn.Conv2d(4, 8, 3, groups=2), nn.Flatten(), nn.Linear(8, 2)),
                     "dynamic.width does not slim grouped convs: layer 0 (Conv2d) has groups=2"),
    "unknown layer": (lambda: nn.Sequential(nn.Conv2d(1, 4, 3), nn.Upsample(scale_factor=2), nn.Flatten()),
                      "dynamic.width slims sequences of Conv2d (groups=1), Linear, BatchNorm1d/2d, pooling,"
                      " activations, Dropout and Flatten; layer 1 (Upsample) is not one"),
    "no flatten": (lambda: nn.Sequential(nn.Conv2d(1, 4, 3), nn.Linear(6, 2)),
                   "dynamic.width needs a Flatten between feature maps and layer 1 (Linear)"),
    "channels lost": (lambda: nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(8, 2, 3)),
                      "dynamic.width cannot follow the channels into layer 1 (Conv2d): it takes 8, the layer before"
                      " gives 4"),
    "nothing to slim": (lambda: nn.Sequential(nn.ReLU()), "dynamic.width needs at least one Conv2d or Linear layer"
                        " to slim"),
}  # fmt: skip


@pytest.mark.parametrize("build, reason", LIMITS.values(), ids=LIMITS.keys())
def test_a_model_it_cannot_slim_is_a_limit_naming_the_layer(build, reason: str) -> None:
    model = build()
    with pytest.raises(CompressorLimit) as caught:
        SlimmableWidth().apply(model, torch.zeros(1, 1, 8, 8))
    assert caught.value.reason == reason
    SlimmableWidth().check(model)  # a limit of the method, not a user error


def test_apply_leaves_the_reference_untouched() -> None:
    reference = _reference("normed")
    state = copy.deepcopy(reference.state_dict())
    slim = SlimmableWidth().apply(reference, example_input((2, 3, 12, 12))).model
    slim.train()
    labels_at_every_width(slim, torch.randn(4, 3, 12, 12), torch.tensor([0, 1, 2, 3])).backward()
    for key, value in reference.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert all(parameter.grad is None for parameter in reference.parameters())


def test_widths_round_halves_up() -> None:
    # 0.5 * 5 = 2.5 keeps 3 channels, where Python's round would keep 2.
    reference = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
    config = SlimmableWidth(widths="0.5/1", width=0.5)
    narrow = config.finalize(config.apply(reference, torch.zeros(1, 4)).model).model
    assert narrow[0].out_features == math.ceil(2.5)


def test_every_loss_a_config_accepts_has_its_function() -> None:
    from compressors._slimmable import LOSS_FUNCTIONS
    from compressors.slimmable import LOSSES

    assert tuple(LOSS_FUNCTIONS) == LOSSES
