"""Bundled data sets, the model registry, the cache of trained references and mask-keeping fine-tuning."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import bench.models.training
import compressors
from bench.errors import BenchError
from bench.measure.accuracy import top1
from bench.models.data import load_dataset
from bench.models.registry import list_models, model_names, register_model, resolve_model
from bench.models.training import (
    fit,
    initial_weights,
    recipe_steps,
    reference_cache_path,
    rewound_weights,
    trained_reference,
)  # fmt: skip


def test_mnist_shapes_and_labels() -> None:
    data = load_dataset("mnist")
    assert len(data.train) == 60000 and len(data.test) == 10000
    assert data.train.x.shape == (60000, 1, 28, 28) and data.test.x.shape == (10000, 1, 28, 28)
    assert data.train.x.dtype == torch.float32 and data.train.y.dtype == torch.int64
    for split in (data.train, data.test):
        assert sorted(split.y.unique().tolist()) == list(range(10))
    # normalized with MNIST's mean and std: roughly zero mean, unit spread over the training set
    assert abs(float(data.train.x.mean())) < 0.05 and 0.9 < float(data.train.x.std()) < 1.1
    assert load_dataset("mnist") is data  # loaded once per process


def test_digits_split() -> None:
    data = load_dataset("digits")
    assert (len(data.train), len(data.test)) == (1437, 360)
    assert data.train.x.shape[1:] == (1, 8, 8)
    assert sorted(data.test.y.unique().tolist()) == list(range(10))
    assert len(data.digest) == 16


def test_unknown_dataset() -> None:
    with pytest.raises(BenchError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")


def test_registry_models_build_and_run() -> None:
    for spec in list_models():
        if spec.input_shape[1] > 32:
            continue  # the ImageNet-sized ones are covered by the shufflenet and slow tests
        model = spec.build().eval()
        with torch.no_grad():
            out = model(torch.zeros(2, *spec.input_shape))
        assert out.shape == (2, 10)


def test_list_models_pattern() -> None:
    assert [s.name for s in list_models("*_cnn")] == ["digits_cnn", "mnist_cnn"]
    assert model_names() == sorted(model_names())
    assert {"resnet18", "mnist_cnn", "digits_cnn"} <= set(model_names())


def test_torchvision_name_resolves_and_runs() -> None:
    spec = resolve_model("shufflenet_v2_x1_0")
    assert spec.source == "torchvision" and spec.dataset is None and spec.input_shape == (3, 224, 224)
    model = spec.build().eval()
    with torch.no_grad():
        out = model(torch.zeros(1, *spec.input_shape))
    assert out.shape == (1, 1000)


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(BenchError) as info:
        resolve_model("mnist_cn")
    message = str(info.value)
    assert "unknown model 'mnist_cn'" in message and "did you mean 'mnist_cnn'" in message
    for name in model_names():
        assert name in message
    assert "torchvision" in message


def test_registering_a_duplicate_name_raises() -> None:
    before = model_names()
    with pytest.raises(ValueError, match="already registered"):
        register_model("digits_cnn", input_shape=(1, 8, 8))(lambda: nn.Identity())
    assert model_names() == before
    assert resolve_model("digits_cnn").dataset == "digits"


def test_trained_reference_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = resolve_model("digits_cnn")
    data = load_dataset("digits")
    calls = []
    real_train = bench.models.training.train
    monkeypatch.setattr(bench.models.training, "train", lambda *a, **k: calls.append(1) or real_train(*a, **k))
    first = trained_reference(spec, data, tmp_path)
    assert calls == [1]
    path = reference_cache_path(spec, data, tmp_path)
    assert path.is_file() and path.parent == tmp_path
    assert not path.with_suffix(".part").exists()
    assert top1(first, data.test) > 0.9

    def no_training(*args, **kwargs):
        raise AssertionError("trained again instead of loading the cache")

    monkeypatch.setattr(bench.models.training, "train", no_training)
    second = trained_reference(spec, data, tmp_path)
    assert second is not first
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert not second.training


def test_trained_reference_without_recipe(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no training recipe"):
        trained_reference(resolve_model("resnet18"), load_dataset("digits"), tmp_path)


def test_fit_keeps_masked_weights_zero_and_recovers(tmp_path: Path) -> None:
    spec = resolve_model("digits_cnn")
    data = load_dataset("digits")
    reference = trained_reference(spec, data, tmp_path)
    compressed = compressors.get("prune.unstructured")(sparsity=0.9).apply(reference, torch.zeros(1, 1, 8, 8))
    assert compressed.masks
    before = top1(compressed.model, data.test)
    fit(compressed.model, data.train, 40, masks=compressed.masks)
    after = top1(compressed.model, data.test)
    params = dict(compressed.model.named_parameters())
    for name, mask in compressed.masks.items():
        assert torch.all(params[name][~mask] == 0), name
        assert int((params[name] != 0).sum()) <= int(mask.sum())
    assert after >= before
    assert not compressed.model.training


def test_fit_rejects_masks_of_unknown_parameters() -> None:
    model = resolve_model("digits_cnn").build()
    with pytest.raises(ValueError, match="nope.weight"):
        fit(model, load_dataset("digits").train, 1, masks={"nope.weight": torch.ones(1, dtype=torch.bool)})


def test_initial_weights_are_stored_with_the_cached_model_and_are_its_start(tmp_path: Path) -> None:
    spec = resolve_model("digits_cnn")
    data = load_dataset("digits")
    trained = trained_reference(spec, data, tmp_path)
    initial = initial_weights(spec, data, tmp_path)
    fresh = spec.build().state_dict()
    assert initial.keys() == fresh.keys()
    for name, value in initial.items():
        assert torch.equal(value, fresh[name]), name
        assert not torch.equal(value, trained.state_dict()[name]), name  # training moved every tensor


def test_initial_weights_are_written_for_a_model_cached_without_them(tmp_path: Path) -> None:
    spec = resolve_model("digits_cnn")
    data = load_dataset("digits")
    trained_reference(spec, data, tmp_path)
    stored = bench.models.training.initial_state_path(reference_cache_path(spec, data, tmp_path))
    stored.unlink()
    trained_reference(spec, data, tmp_path)
    assert torch.equal(initial_weights(spec, data, tmp_path)["0.weight"], spec.build().state_dict()["0.weight"])


def test_rewinding_replays_the_reference_training(tmp_path: Path) -> None:
    spec = resolve_model("digits_cnn")
    data = load_dataset("digits")
    assert spec.recipe is not None
    steps = recipe_steps(spec.recipe, data.train)
    assert steps == spec.recipe.epochs * -(-len(data.train) // spec.recipe.batch_size)
    trained = trained_reference(spec, data, tmp_path).state_dict()
    at_start = rewound_weights(spec, data, tmp_path, 0)
    at_end = rewound_weights(spec, data, tmp_path, steps)
    early = rewound_weights(spec, data, tmp_path, 5)
    for name, value in at_start.items():
        assert torch.equal(value, spec.build().state_dict()[name]), name
        torch.testing.assert_close(at_end[name], trained[name], rtol=1e-4, atol=1e-5)
        assert not torch.equal(early[name], value) and not torch.equal(early[name], at_end[name]), name
    again = rewound_weights(spec, data, tmp_path, 5)
    assert all(torch.equal(early[name], again[name]) for name in early)
