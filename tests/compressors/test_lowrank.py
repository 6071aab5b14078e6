"""lowrank.svd: exact at full rank, the rank really used, energy rule, parameter counts, skips, validation."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from compressors import get
from compressors.lowrank import LowRankSVD, factorizable_layers, gram_svd
from tests.compressors.conftest import MODELS, example_input


def _params(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def _relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).norm() / expected.norm())


def _with_singular_values(layer: nn.Linear, values: list[float]) -> nn.Linear:
    """Sets `layer.weight` to U diag(values) V^T with random orthonormal U and V."""
    generator = torch.Generator().manual_seed(3)
    out_features, in_features = layer.weight.shape
    u, _ = torch.linalg.qr(torch.randn(out_features, len(values), generator=generator))
    v, _ = torch.linalg.qr(torch.randn(in_features, len(values), generator=generator))
    with torch.no_grad():
        layer.weight.copy_(u @ torch.diag(torch.tensor(values)) @ v.T)
    return layer


def test_is_registered() -> None:
    assert get("lowrank.svd") is LowRankSVD


@pytest.mark.parametrize("shape", [(6, 20), (20, 6), (7, 7), (3, 9, 4)])
def test_gram_svd_matches_lapack(shape: tuple[int, int]) -> None:
    matrix = torch.randn(shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    u, s, vh = gram_svd(matrix)
    torch.testing.assert_close(s, torch.linalg.svdvals(matrix))
    torch.testing.assert_close(u @ torch.diag_embed(s) @ vh, matrix)
    identity = torch.eye(s.shape[-1], dtype=torch.float64).expand(*s.shape, s.shape[-1])
    torch.testing.assert_close(u.mT @ u, identity)
    torch.testing.assert_close(vh @ vh.mT, identity)


def test_gram_svd_of_a_rank_deficient_matrix_stays_finite() -> None:
    generator = torch.Generator().manual_seed(5)
    factors = [torch.randn(shape, generator=generator, dtype=torch.float64) for shape in ((8, 2), (2, 5))]
    matrix = factors[0] @ factors[1]
    u, s, vh = gram_svd(matrix)
    assert torch.isfinite(u).all() and torch.isfinite(vh).all()
    assert s[2:].max() < 1e-6 * s[0]
    torch.testing.assert_close(u[:, :2] @ torch.diag(s[:2]) @ vh[:2], matrix)
    assert not gram_svd(torch.zeros(3, 4, dtype=torch.float64))[0].isnan().any()


@pytest.mark.parametrize(
    ("layer", "x"),
    [
        (nn.Linear(12, 7), torch.randn(3, 12)),
        (nn.Linear(5, 9, bias=False), torch.randn(2, 4, 5)),
        (nn.Conv2d(5, 6, (3, 2), stride=2, padding=(1, 2), dilation=(2, 1)), torch.randn(2, 5, 11, 9)),
        (nn.Conv2d(3, 40, 3, padding=1, bias=False), torch.randn(1, 3, 8, 8)),
    ],
)
def test_full_rank_reproduces_the_layer(layer: nn.Module, x: torch.Tensor) -> None:
    torch.manual_seed(0)
    result = LowRankSVD(rank_ratio=1.0, skip_if_no_saving=False).apply(layer, x)
    assert isinstance(result.model, nn.Sequential)
    with torch.no_grad():
        assert _relative_error(result.model(x), layer(x)) < 1e-5
    assert result.info["layers"][""]["energy_kept"] == pytest.approx(1.0)


def test_the_rank_is_really_used() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 10, 3, stride=2, padding=1), nn.Flatten(), nn.Linear(10 * 4 * 4, 6))
    result = LowRankSVD(rank=3).apply(model, torch.randn(1, 4, 8, 8))
    (conv_in, conv_out), _, (linear_in, linear_out) = result.model
    assert conv_in.weight.shape == (3, 4, 3, 3) and conv_in.bias is None
    assert (conv_in.stride, conv_in.padding) == ((2, 2), (1, 1))
    assert conv_out.weight.shape == (10, 3, 1, 1) and conv_out.bias is not None
    assert linear_in.weight.shape == (3, 160) and linear_in.bias is None
    assert linear_out.weight.shape == (6, 3) and torch.equal(linear_out.bias, model[2].bias)
    layers = result.info["layers"]
    assert (layers["0"]["rank"], layers["0"]["full_rank"]) == (3, 10)
    assert (layers["2"]["rank"], layers["2"]["full_rank"]) == (3, 6)


def test_the_truncation_is_the_best_rank_r_approximation() -> None:
    layer = _with_singular_values(nn.Linear(8, 6, bias=False), [5.0, 4.0, 3.0, 2.0, 1.0, 0.5])
    result = LowRankSVD(rank=2, skip_if_no_saving=False).apply(layer, torch.randn(1, 8))
    with torch.no_grad():
        rebuilt = result.model[1].weight @ result.model[0].weight
        error = float((rebuilt - layer.weight).norm())
    assert error == pytest.approx((3**2 + 2**2 + 1 + 0.5**2) ** 0.5, rel=1e-5)
    assert result.info["layers"][""]["energy_kept"] == pytest.approx(41 / 55.25)


@pytest.mark.parametrize(
    ("energy", "rank"),
    [(0.3, 1), (0.45, 1), (0.5, 2), (0.74, 2), (0.76, 3), (0.9, 3), (0.92, 4), (0.98, 4), (0.99, 5), (1.0, 5)],
)
def test_energy_picks_the_smallest_rank_reaching_it(energy: float, rank: int) -> None:
    # Squared singular values 25, 16, 9, 4, 1 of 55: cumulative shares 0.455, 0.745, 0.909, 0.982, 1.
    layer = _with_singular_values(nn.Linear(7, 5), [5.0, 4.0, 3.0, 2.0, 1.0])
    result = LowRankSVD(energy=energy, skip_if_no_saving=False).apply(layer, torch.randn(1, 7))
    assert result.info["layers"][""]["rank"] == rank
    assert result.model[0].out_features == rank
    assert result.info["layers"][""]["energy_kept"] >= energy - 1e-9


def test_parameter_counts_match_the_formula(mnist: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = mnist
    result = LowRankSVD(rank_ratio=0.5).apply(model, x)
    expected = _params(model)
    for name, layer in factorizable_layers(model):
        out_features, in_features = layer.weight.shape[0], layer.weight[0].numel()
        rank = max(1, round(0.5 * min(out_features, in_features)))
        assert result.info["layers"][name]["rank"] == rank
        predicted = rank * (out_features + in_features) + out_features
        assert result.info["layers"][name]["params_after"] == predicted
        assert _params(result.model.get_submodule(name)) == predicted
        expected += predicted - _params(layer)
    assert _params(result.model) == expected == result.info["params_after"]
    assert result.info["params_before"] == _params(model)
    assert result.info["layers_factorized"] == 4
    assert result.info["layers_skipped"] == {}


def test_layers_without_a_saving_are_skipped() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 100))
    result = LowRankSVD(rank=2).apply(model, torch.randn(1, 4))
    # 2 x (4 + 4) = 16 is not fewer than the 16 weights, so the first stays; 2 x 104 < 400 saves.
    assert isinstance(result.model[0], nn.Linear)
    assert torch.equal(result.model[0].weight, model[0].weight)
    assert isinstance(result.model[1], nn.Sequential)
    assert result.info["layers_skipped"] == {"0": "no saving at rank 2: 2 x (4 + 4) = 16 >= 16 weights"}
    assert result.info["layers_factorized"] == 1
    assert result.info["layers"]["0"]["factorized"] is False
    assert result.info["layers"]["0"]["params_after"] == result.info["layers"]["0"]["params_before"] == 20
    forced = LowRankSVD(rank=2, skip_if_no_saving=False).apply(model, torch.randn(1, 4))
    assert isinstance(forced.model[0], nn.Sequential)
    assert forced.info["layers_skipped"] == {}


@pytest.mark.parametrize(("layers", "kind"), [("linear", nn.Conv2d), ("conv", nn.Linear)])
def test_layers_chooses_the_kind(mnist: tuple[nn.Module, torch.Tensor], layers: str, kind: type[nn.Module]) -> None:
    model, x = mnist
    result = LowRankSVD(layers=layers).apply(model, x)
    untouched = [index for index, module in enumerate(model) if isinstance(module, kind)]
    for index in untouched:
        assert type(result.model[index]) is kind
        assert torch.equal(result.model[index].weight, model[index].weight)
    assert result.info["layers_factorized"] == 2


def test_grouped_convs_are_not_factorized() -> None:
    model = nn.Sequential(nn.Conv2d(4, 4, 3, groups=4), nn.Conv2d(4, 8, 3, groups=2), nn.Conv2d(8, 8, 1))
    assert [name for name, _ in factorizable_layers(model)] == ["2"]


def test_a_rank_larger_than_a_layer_allows_is_refused() -> None:
    model = torchvision.models.resnet18()
    with pytest.raises(ValueError) as caught:
        LowRankSVD(rank=600, layers="linear").check(model)
    assert str(caught.value) == "rank 600 exceeds layer fc's full rank 512"
    factory, shape = MODELS["mnist_cnn"]
    with pytest.raises(ValueError) as caught:
        LowRankSVD(rank=10).apply(factory(), example_input(shape))
    assert str(caught.value) == "rank 10 exceeds layer 0's full rank 9"
    LowRankSVD(rank=9).check(factory())


@pytest.mark.parametrize(
    ("model", "layers", "message"),
    [
        (
            nn.Sequential(nn.Linear(4, 4)),
            "conv",
            "no groups=1 nn.Conv2d layer to factorize; lowrank.svd with layers='conv' needs at least one",
        ),
        (
            nn.Conv2d(4, 4, 3),
            "linear",
            "no nn.Linear layer to factorize; lowrank.svd with layers='linear' needs at least one",
        ),
        (
            nn.Sequential(nn.Conv2d(4, 4, 3, groups=4), nn.ReLU()),
            "all",
            "no nn.Linear or groups=1 nn.Conv2d layer to factorize; lowrank.svd with layers='all' needs at least one",
        ),
    ],
)
def test_models_without_an_eligible_layer_are_refused(model: nn.Module, layers: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        LowRankSVD(layers=layers).check(model)
    assert str(caught.value) == message


def test_finalize_runs_the_factors_dense() -> None:
    model = nn.Linear(2, 2)
    executable = LowRankSVD().finalize(model)
    assert executable.model is model
    assert executable.executed_as == "dense (factorized layers)"


def test_numbers_are_normalized_to_float() -> None:
    config = LowRankSVD(rank_ratio=1)
    assert isinstance(config.rank_ratio, float)
    assert config == LowRankSVD(rank_ratio=1.0)
    assert LowRankSVD(energy=1) == LowRankSVD(energy=1.0)


def test_energy_or_rank_override_the_default_rank_ratio() -> None:
    assert LowRankSVD(energy=0.9).rank_ratio == 0.5
    assert LowRankSVD.from_dict(LowRankSVD(rank=4).to_dict()) == LowRankSVD(rank=4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rank_ratio": 0}, "rank_ratio must be in (0, 1], got 0"),
        ({"rank_ratio": 1.5}, "rank_ratio must be in (0, 1], got 1.5"),
        ({"rank_ratio": "abc"}, "rank_ratio must be a number in (0, 1], got 'abc'"),
        ({"rank_ratio": True}, "rank_ratio must be a number in (0, 1], got True"),
        ({"energy": 1.2}, "energy must be in (0, 1], got 1.2"),
        ({"energy": 0.0}, "energy must be in (0, 1], got 0.0"),
        ({"rank": 0}, "rank must be a positive integer, got 0"),
        ({"rank": 2.0}, "rank must be a positive integer, got 2.0"),
        ({"rank": True}, "rank must be a positive integer, got True"),
        ({"layers": "foo"}, "layers must be one of all, linear, conv; got 'foo'"),
        ({"skip_if_no_saving": "no"}, "skip_if_no_saving must be true or false, got 'no'"),
        ({"energy": 0.9, "rank": 8}, "set only one of rank_ratio, energy, rank; got energy=0.9, rank=8"),
        (
            {"rank_ratio": 0.3, "energy": 0.9},
            "set only one of rank_ratio, energy, rank; got rank_ratio=0.3, energy=0.9",
        ),
        ({"rank_ratio": 1.0, "rank": 8}, "set only one of rank_ratio, energy, rank; got rank_ratio=1.0, rank=8"),
    ],
)
def test_invalid_fields_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        LowRankSVD(**kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message


@pytest.mark.slow
def test_imagenet_architectures_at_224(imagenet_case: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = imagenet_case
    result = LowRankSVD().apply(model, x)
    assert result.info["params_after"] == _params(result.model) < result.info["params_before"]
    assert result.info["layers_factorized"] + len(result.info["layers_skipped"]) == len(factorizable_layers(model))
    scripted = torch.jit.script(result.model.eval())
    with torch.no_grad():
        assert scripted(x).shape == (1, 1000)
