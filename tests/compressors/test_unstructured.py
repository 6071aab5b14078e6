"""prune.unstructured: exact sparsity, scope semantics, masks, CSR execution and config validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from compressors import get
from compressors.sparse_modules import CsrConv2d, CsrLinear
from compressors.unstructured import UnstructuredPruning, prunable_layers
from tests.compressors.conftest import IGNORE_UNCHECKED_CSR, MODELS, example_input

pytestmark = IGNORE_UNCHECKED_CSR


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: module.weight.detach() for name, module in prunable_layers(model)}


def test_is_registered() -> None:
    assert get("prune.unstructured") is UnstructuredPruning


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.99])
def test_global_sparsity_is_exact(mnist: tuple[nn.Module, torch.Tensor], sparsity: float) -> None:
    model, x = mnist
    result = UnstructuredPruning(sparsity=sparsity).apply(model, x)
    weights = _weights(result.model)
    total = sum(weight.numel() for weight in weights.values())
    zeros = sum(int((weight == 0).sum()) for weight in weights.values())
    assert zeros == round(sparsity * total)
    assert result.info["sparsity_achieved"] == pytest.approx(zeros / total)


def test_global_scope_uses_one_threshold(mnist: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = mnist
    result = UnstructuredPruning(sparsity=0.8, scope="global").apply(model, x)
    original = _weights(model)
    pruned = _weights(result.model)
    largest_removed = max(original[n][pruned[n] == 0].abs().max() for n in original if (pruned[n] == 0).any())
    smallest_kept = min(original[n][pruned[n] != 0].abs().min() for n in original)
    assert largest_removed <= smallest_kept
    # The 3136x128 Linear has far smaller initial weights than the first conv, so one threshold strips it more.
    layer_sparsity = result.info["layer_sparsity"]
    assert layer_sparsity["7"] > 0.8 > layer_sparsity["0"]


def test_layer_scope_prunes_every_layer_to_the_sparsity(mnist: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = mnist
    result = UnstructuredPruning(sparsity=0.8, scope="layer").apply(model, x)
    original = _weights(model)
    for name, weight in _weights(result.model).items():
        removed = weight == 0
        assert int(removed.sum()) == round(0.8 * weight.numel()), name
        assert original[name][removed].abs().max() <= original[name][~removed].abs().min(), name
        assert result.info["layer_sparsity"][name] == pytest.approx(int(removed.sum()) / weight.numel())


def test_masks_match_zeros(mnist: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = mnist
    result = UnstructuredPruning(sparsity=0.7).apply(model, x)
    parameters = dict(result.model.named_parameters())
    assert set(result.masks) == {"0.weight", "3.weight", "7.weight", "9.weight"}
    for name, mask in result.masks.items():
        assert torch.equal(mask, parameters[name] != 0), name


def test_ties_are_broken_by_position() -> None:
    model = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    result = UnstructuredPruning(sparsity=0.5).apply(model, torch.randn(1, 4))
    assert result.masks["weight"].flatten().tolist() == [False] * 4 + [True] * 4
    again = UnstructuredPruning(sparsity=0.5).apply(model, torch.randn(1, 4))
    assert torch.equal(again.masks["weight"], result.masks["weight"])


def test_model_without_prunable_layers_is_refused() -> None:
    with pytest.raises(ValueError, match="^prune.unstructured found no nn.Conv2d or nn.Linear layer to prune$"):
        UnstructuredPruning().apply(nn.ReLU(), torch.randn(1, 4))


def test_dense_execution_keeps_the_model(mnist: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = mnist
    config = UnstructuredPruning(execution="dense")
    result = config.apply(model, x)
    executable = config.finalize(result.model)
    assert executable.model is result.model
    assert executable.executed_as == "dense kernels (zeros stored)"


def test_csr_execution_swaps_layers_and_keeps_grouped_convs_dense() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.Conv2d(8, 8, 3, padding=1, groups=8),
        nn.Conv2d(8, 8, 3, padding=1, groups=2),
        nn.Flatten(),
        nn.Linear(8 * 6 * 6, 5),
    )
    x = torch.randn(3, 3, 6, 6)
    config = UnstructuredPruning(sparsity=0.6, execution="csr")
    result = config.apply(model, x)
    executable = config.finalize(result.model)
    kinds = [type(module) for module in executable.model]
    assert kinds == [CsrConv2d, nn.Conv2d, nn.Conv2d, nn.Flatten, CsrLinear]
    assert executable.executed_as == "sparse CSR (torch.sparse.mm; conv as unfold + CSR matmul)"
    assert executable.notes == "2 grouped/depthwise convs kept dense (no CSR path)"
    assert isinstance(result.model[0], nn.Conv2d), "finalize must not modify the trainable model"
    with torch.no_grad():
        torch.testing.assert_close(executable.model(x), result.model(x))


def test_csr_execution_of_a_bare_linear() -> None:
    config = UnstructuredPruning(sparsity=0.5, execution="csr")
    result = config.apply(nn.Linear(6, 3), torch.randn(2, 6))
    executable = config.finalize(result.model)
    assert isinstance(executable.model, CsrLinear)
    assert executable.notes == ""


def test_sparsity_is_normalized_to_float() -> None:
    config = UnstructuredPruning(sparsity=0)
    assert isinstance(config.sparsity, float)
    assert config == UnstructuredPruning(sparsity=0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sparsity": 1.0}, "sparsity must be in [0, 1), got 1.0"),
        ({"sparsity": 1.5}, "sparsity must be in [0, 1), got 1.5"),
        ({"sparsity": -0.1}, "sparsity must be in [0, 1), got -0.1"),
        ({"sparsity": "abc"}, "sparsity must be a number in [0, 1), got 'abc'"),
        ({"sparsity": True}, "sparsity must be a number in [0, 1), got True"),
        ({"scope": "model"}, "scope must be one of global, layer; got 'model'"),
        ({"scope": 1}, "scope must be one of global, layer; got 1"),
        ({"execution": "foo"}, "execution must be one of dense, csr; got 'foo'"),
    ],
)
def test_invalid_fields_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        UnstructuredPruning(**kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_csr_resnet_survives_torchscript_save_and_load(tmp_path: Path) -> None:
    factory, shape = MODELS["tiny_resnet"]
    model, x = factory().eval(), example_input(shape)
    config = UnstructuredPruning(sparsity=0.8, execution="csr")
    result = config.apply(model, x)
    executable = config.finalize(result.model)
    assert not any(isinstance(module, nn.Conv2d | nn.Linear) for module in executable.model.modules())
    path = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(executable.model), str(path))
    with torch.no_grad():
        expected = result.model(x)
        actual = torch.jit.load(str(path))(x)
    torch.testing.assert_close(actual, expected, atol=1e-4 * max(1.0, expected.abs().max().item()), rtol=0)
