"""`dynamic.early_exit`: stages, the one-line refusals, the scripted branch an input takes, and joint training."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from bench.engines.artifacts import save_torchscript
from bench.measure.accuracy import top1
from bench.models.data import load_dataset
from bench.models.registry import resolve_model
from bench.models.training import train
from compressors import Training, TrainingFacts, get
from compressors._exits import exit_path, find_stages
from compressors.early_exit import EarlyExit, parse_exits
from tests.compressors.conftest import EXIT_CLASSES, mnist_cnn, sure_of_bright_inputs, tiny_exit_model, tiny_resnet

CLASSES = EXIT_CLASSES


def test_stages_of_the_suites_models_are_found_and_listed() -> None:
    assert [(s.index, s.position) for s in find_stages(mnist_cnn())] == [(1, 3), (2, 6)]
    assert [s.label for s in find_stages(tiny_resnet())] == ["after layer1", "after layer2", "after layer3"]
    assert [s.index for s in find_stages(resolve_model("digits_cnn").build())] == [1]
    assert find_stages(nn.Linear(4, 2)) == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"exits": "0"}, r"^exits must be stage numbers >= 1 joined by '\+', e.g. \"1\" or \"1\+2\"; got '0'$"),
        ({"exits": "1,2"}, r"^exits must be stage numbers >= 1 joined by '\+'.*got '1,2'$"),
        ({"exits": "2+2"}, r"^exits names a stage twice: '2\+2'$"),
        ({"rule": "margin"}, r"^rule must be one of confidence, entropy; got 'margin'$"),
        ({"threshold": 0.0}, r"^threshold for rule confidence must be in \(0, 1\], got 0.0$"),
        ({"threshold": 1.01}, r"^threshold for rule confidence must be in \(0, 1\], got 1.01$"),
        ({"rule": "entropy", "threshold": -0.1}, r"^threshold for rule entropy must be in \[0, ln\(classes\)\]"),
        ({"threshold": "high"}, r"^threshold must be a number, got 'high'$"),
    ],
)
def test_a_bad_value_is_one_line_naming_it(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EarlyExit.from_dict(params)


def test_exits_are_normalized_so_equal_configs_are_equal() -> None:
    assert EarlyExit(exits=2) == EarlyExit(exits="2")
    assert EarlyExit(exits="2+1").exits == "1+2" and parse_exits("2+1") == (1, 2)
    assert EarlyExit(threshold=1).threshold == 1.0


def test_check_names_the_stages_a_model_has_and_the_largest_entropy() -> None:
    with pytest.raises(ValueError, match=r"^exits: stage 3 is not a stage of Sequential; its stages: 1 \(after"):
        EarlyExit(exits="1+3").check(mnist_cnn())
    with pytest.raises(ValueError, match=r"^exits: Linear has no stage an exit can follow"):
        EarlyExit().check(nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"ln\(10\) = 2.3026\] nats for a model of 10 classes, got 2.5$"):
        EarlyExit(rule="entropy", threshold=2.5).check(mnist_cnn())
    EarlyExit(exits="1+2", rule="entropy", threshold=2.3).check(mnist_cnn())


def test_check_training_refuses_a_cell_without_steps() -> None:
    with pytest.raises(ValueError, match=r"^dynamic.early_exit trains its exit heads: finetune_steps must be >= 1"):
        EarlyExit().check_training(TrainingFacts(steps=0, reference_steps=100, initial_weights=True))
    EarlyExit().check_training(TrainingFacts(steps=10, reference_steps=None, initial_weights=False))


def test_rule_and_threshold_are_execution_fields_so_a_grid_trains_once() -> None:
    keys = {EarlyExit(rule=rule, threshold=t).training_key() for rule in ("confidence", "entropy") for t in (0.5, 1)}
    assert len(keys) == 1
    assert EarlyExit(exits="1+2").training_key() not in keys


def test_an_input_the_first_head_is_sure_of_leaves_there_in_the_saved_script(tmp_path: Path) -> None:
    model = tiny_exit_model()
    example = torch.zeros(1, 1, 4, 4)
    config = EarlyExit(exits="1", threshold=0.9)
    compressed = config.apply(model, example)
    sure_of_bright_inputs(compressed.model)
    path = save_torchscript(config.finalize(compressed.model).model, example, tmp_path / "exit.pt")
    loaded = torch.jit.load(str(path))
    assert "prim::If" in str(loaded.run.graph), "the decision must be a branch of the saved graph, not a traced path"
    bright, dark = torch.full((1, 1, 4, 4), 10.0), torch.zeros(1, 1, 4, 4)
    with torch.no_grad():
        head_logits = compressed.model.heads[0](compressed.model.segments[0](bright))
        final_logits = compressed.model(dark)
        taken = [loaded.run(x)[1] for x in (bright, dark, bright, bright)]
        assert taken == [0, 1, 0, 0]
        assert taken.count(0) == 3
        torch.testing.assert_close(loaded(bright), head_logits)
        torch.testing.assert_close(loaded(dark), final_logits)
        # A batch takes each sample's own first sure exit.
        logits, index = loaded.decide(torch.cat([bright, dark]))
    assert index.tolist() == [0, 1]
    torch.testing.assert_close(logits, torch.cat([head_logits, final_logits]))


def test_the_entropy_rule_takes_the_same_branch() -> None:
    model = tiny_exit_model()
    config = EarlyExit(exits="1", rule="entropy", threshold=0.05)
    compressed = config.apply(model, torch.zeros(1, 1, 4, 4))
    sure_of_bright_inputs(compressed.model)
    scripted = config.finalize(compressed.model).model
    assert scripted.run(torch.full((1, 1, 4, 4), 10.0))[1] == 0
    assert scripted.run(torch.zeros(1, 1, 4, 4))[1] == 1  # uniform softmax: entropy ln 3 > 0.05


def test_untrained_heads_send_every_input_to_the_final_exit() -> None:
    model = mnist_cnn().eval()
    config = EarlyExit(exits="1+2", threshold=0.2)
    compressed = config.apply(model, torch.zeros(1, 1, 28, 28))
    x = torch.randn(6, 1, 28, 28)
    with torch.no_grad():
        _logits, index = config.finalize(compressed.model).model.decide(x)
        torch.testing.assert_close(compressed.model(x), model(x))
    assert index.tolist() == [2] * 6
    assert compressed.info["exit_stages"] == ["after MaxPool2d (layer 3)", "after MaxPool2d (layer 6)", "final"]


def test_exit_paths_run_every_head_on_the_way() -> None:
    compressed = EarlyExit(exits="1+2").apply(mnist_cnn(), torch.zeros(1, 1, 28, 28))
    first, final = exit_path(compressed.model, 0), exit_path(compressed.model, 2)
    assert len(first.heads) == 1 and first.final is None
    assert len(final.heads) == 2 and final.final is compressed.model.final
    with pytest.raises(ValueError, match=r"^exit index must be in 0\.\.2, got 3$"):
        exit_path(compressed.model, 3)


@pytest.fixture(scope="module")
def digits_training() -> Iterator[tuple[nn.Module, Training]]:
    """digits_cnn trained by the suite's recipe, and a Training lending a real loop over its training split (one
    torch thread: on a shared machine two threads wait for each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    spec = resolve_model("digits_cnn")
    data = load_dataset("digits")
    assert spec.recipe is not None
    model = train(spec.build(), data.train, spec.recipe)

    def fit(net: nn.Module, steps: int, *, masks=None, loss=None, seed=None) -> None:  # noqa: ANN001
        generator = torch.Generator().manual_seed(0 if seed is None else seed)
        optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
        net.train()
        for _ in range(steps):
            index = torch.randint(len(data.train), (64,), generator=generator)
            optimizer.zero_grad()
            assert loss is not None, "early exit trains on its joint loss"
            loss(net, data.train.x[index], data.train.y[index]).backward()
            optimizer.step()
        net.eval()

    training = Training(
        steps=150, seed=3, fit=fit, evaluate=lambda net: top1(net, data.test), initial_state=None,
        rewound_state=None, reference_steps=spec.recipe.epochs * 45,
    )  # fmt: skip
    yield model, training
    torch.set_num_threads(threads)


def test_joint_training_teaches_the_head_and_leaves_the_input_model_alone(
    digits_training: tuple[nn.Module, Training],
) -> None:
    model, training = digits_training
    before = {key: value.clone() for key, value in model.state_dict().items()}
    config = get("dynamic.early_exit")(exits="1", threshold=0.9)
    compressed = config.apply_trained(model, torch.zeros(1, 1, 8, 8), [], training)
    assert all(torch.equal(model.state_dict()[key], value) for key, value in before.items())
    head_alone, final_alone = compressed.info["exit_top1_alone"]
    assert head_alone > 0.5, "150 joint steps teach the head far better than chance (0.1)"
    assert final_alone > 0.8
    assert compressed.info["trained_steps"] == 150 and compressed.info["exits"] == [1]


def test_joint_training_repeats_with_its_seed(digits_training: tuple[nn.Module, Training]) -> None:
    model, training = digits_training
    short = dataclasses.replace(training, steps=5)
    config = EarlyExit(exits="1")
    first, again = (config.apply_trained(model, torch.zeros(1, 1, 8, 8), [], short) for _ in range(2))
    other = config.apply_trained(model, torch.zeros(1, 1, 8, 8), [], dataclasses.replace(short, seed=4))
    for (name, a), b in zip(first.model.state_dict().items(), again.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), f"same seed, same data order: {name} must repeat"
    assert not torch.equal(first.model.heads[0][2].weight, other.model.heads[0][2].weight)


def test_mnist_resnet18_has_resnet18s_topology_and_three_stages() -> None:
    spec = resolve_model("mnist_resnet18")
    model = spec.build().eval()
    assert isinstance(model, torchvision.models.ResNet) and spec.dataset == "mnist" and spec.input_shape == (1, 28, 28)
    assert [len(getattr(model, f"layer{k}")) for k in (1, 2, 3, 4)] == [2, 2, 2, 2]
    assert [getattr(model, f"layer{k}")[0].conv1.out_channels for k in (1, 2, 3, 4)] == [32, 64, 128, 256]
    assert [stage.label for stage in find_stages(model)] == ["after layer1", "after layer2", "after layer3"]
    x = torch.randn(3, 1, 28, 28)
    config = EarlyExit(exits="1+2+3", threshold=0.5)
    config.check(model)
    compressed = config.apply(model, x[:1])
    with torch.no_grad():
        torch.testing.assert_close(compressed.model(x), model(x))
        _logits, index = config.finalize(compressed.model).model.decide(x)
    assert index.tolist() == [3, 3, 3]  # untrained heads are never sure
