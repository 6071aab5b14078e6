"""quant.bits, quant.binary, quant.cluster: codes in range, codes decode to the model's weights bit for bit,
value counts per channel/layer, error vs bits, deterministic k-means, config validation."""

from __future__ import annotations

import itertools
import re

import pytest
import torch
from torch import nn

from compressors import WeightCode, get
from compressors.quant_weights import (
    BinaryWeights,
    WeightClustering,
    WeightQuantization,
    decode_weight,
    kmeans_1d,
)
from compressors.unstructured import UnstructuredPruning, prunable_layers


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{name}.weight": module.weight.detach() for name, module in prunable_layers(model)}


def _configs() -> list[WeightQuantization | BinaryWeights | WeightClustering]:
    quant = [
        WeightQuantization(bits=bits, scheme=scheme) for bits in (2, 3, 4, 6, 8) for scheme in ("affine", "symmetric")
    ]
    return [*quant, BinaryWeights(), *(WeightClustering(bits=bits) for bits in (1, 2, 4, 8))]


@pytest.mark.parametrize(
    ("name", "cls"),
    [("quant.bits", WeightQuantization), ("quant.binary", BinaryWeights), ("quant.cluster", WeightClustering)],
)
def test_is_registered(name: str, cls: type) -> None:
    assert get(name) is cls


@pytest.mark.parametrize("config", _configs(), ids=repr)
def test_codes_in_range_and_decode_to_the_weights_bit_for_bit(
    mnist: tuple[nn.Module, torch.Tensor], config: WeightQuantization | BinaryWeights | WeightClustering
) -> None:
    model, x = mnist
    result = config.apply(model, x)
    weights = _weights(result.model)
    assert result.codes.keys() == weights.keys()
    assert result.masks == {}
    for name, code in result.codes.items():
        assert code.bits == result.info["bits"]
        assert not code.codes.is_floating_point()
        assert code.codes.shape == weights[name].shape
        assert 0 <= int(code.codes.min()) and int(code.codes.max()) < 2**code.bits, name
        decoded = decode_weight(code)
        assert torch.equal(decoded.view(torch.int32), weights[name].view(torch.int32)), name


@pytest.mark.parametrize("config", _configs(), ids=repr)
def test_biases_stay_fp32_and_untouched(
    mnist: tuple[nn.Module, torch.Tensor], config: WeightQuantization | BinaryWeights | WeightClustering
) -> None:
    model, x = mnist
    result = config.apply(model, x)
    before, after = dict(model.named_parameters()), dict(result.model.named_parameters())
    for name in before:
        if name.endswith("bias"):
            assert after[name].dtype == torch.float32 and torch.equal(after[name], before[name]), name


@pytest.mark.parametrize("scheme", ["affine", "symmetric"])
@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8])
def test_at_most_2_to_the_bits_values_per_output_channel(
    mnist: tuple[nn.Module, torch.Tensor], bits: int, scheme: str
) -> None:
    model, x = mnist
    for weight in _weights(WeightQuantization(bits=bits, scheme=scheme).apply(model, x).model).values():
        for channel in weight.reshape(weight.shape[0], -1):
            assert channel.unique().numel() <= 2**bits


def test_symmetric_codes_are_centered_on_the_zero_point(mnist: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = mnist
    for code in WeightQuantization(bits=4, scheme="symmetric").apply(model, x).codes.values():
        assert torch.all(code.tables["zero_point"] == 8)
        assert int(code.codes.min()) >= 1
        # Weights of opposite sign and equal magnitude get mirrored codes.
        assert torch.equal(decode_weight(WeightCode(16 - code.codes, 4, code.tables)), -decode_weight(code))


def test_affine_keeps_pruned_zeros_exact(mnist: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = mnist
    pruned = UnstructuredPruning(sparsity=0.7).apply(model, x).model
    quantized = WeightQuantization(bits=3).apply(pruned, x).model
    for name, weight in _weights(pruned).items():
        assert torch.all(_weights(quantized)[name][weight == 0] == 0), name


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_cluster_has_at_most_2_to_the_bits_values_per_layer(mnist: tuple[nn.Module, torch.Tensor], bits: int) -> None:
    model, x = mnist
    result = WeightClustering(bits=bits).apply(model, x)
    for name, weight in _weights(result.model).items():
        assert weight.unique().numel() <= 2**bits
        assert result.info["codebook_sizes"][name] == 2**bits


def test_cluster_codebook_is_capped_by_the_layer_size() -> None:
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    result = WeightClustering(bits=4).apply(model, torch.zeros(1, 2))
    assert result.info["codebook_sizes"] == {"weight": 2}
    assert torch.equal(result.model.weight, model.weight)


def test_binary_weights_are_plus_minus_mean_abs_per_channel(mnist: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = mnist
    result = BinaryWeights().apply(model, x)
    original = _weights(model)
    for name, weight in _weights(result.model).items():
        rows_before, rows_after = original[name].reshape(weight.shape[0], -1), weight.reshape(weight.shape[0], -1)
        for before, after in zip(rows_before, rows_after, strict=True):
            values = after.unique()
            assert values.numel() == 2 and values[0] == -values[1]
            torch.testing.assert_close(values[1], before.abs().mean())
            assert torch.equal(after > 0, before >= 0)
        assert torch.equal(result.codes[name].codes.bool(), original[name] >= 0)


def test_error_shrinks_as_bits_grow(mnist: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = mnist
    for scheme in ("affine", "symmetric"):
        config = {bits: WeightQuantization(bits=bits, scheme=scheme) for bits in (2, 4, 8)}
        error = {bits: config[bits].apply(model, x).info["max_abs_error"] for bits in config}
        assert error[8] < error[4] < error[2], scheme
    binary = BinaryWeights().apply(model, x).info["max_abs_error"]
    assert binary > error[2]
    cluster = {bits: WeightClustering(bits=bits).apply(model, x).info["max_abs_error"] for bits in (2, 4, 8)}
    assert cluster[8] < cluster[4] < cluster[2]


def test_max_abs_error_is_the_largest_weight_change(mnist: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = mnist
    result = WeightQuantization(bits=3).apply(model, x)
    original = _weights(model)
    changes = [(weight - original[name]).abs().max().item() for name, weight in _weights(result.model).items()]
    assert result.info["max_abs_error"] == max(changes)


def _within_cluster_error(values: torch.Tensor, codebook: torch.Tensor, codes: torch.Tensor) -> float:
    return float(((values - codebook[codes.long()]) ** 2).sum())


def test_kmeans_is_deterministic_and_improves_on_the_linear_grid() -> None:
    values = torch.randn(20_000, generator=torch.Generator().manual_seed(0)) ** 3
    first, second = kmeans_1d(values, 16, 30), kmeans_1d(values, 16, 30)
    assert torch.equal(first.codebook, second.codebook) and torch.equal(first.codes, second.codes)
    initial = kmeans_1d(values, 16, 0)
    assert initial.iterations == 0
    assert torch.allclose(initial.codebook, torch.linspace(float(values.min()), float(values.max()), 16))
    assert 0 < first.iterations <= 30
    assert _within_cluster_error(values, first.codebook, first.codes) < 0.5 * _within_cluster_error(
        values, initial.codebook, initial.codes
    )
    assert torch.all(first.codebook[1:] >= first.codebook[:-1])


def test_kmeans_codes_are_the_nearest_centroid() -> None:
    values = torch.randn(5_000, generator=torch.Generator().manual_seed(1))
    clustering = kmeans_1d(values, 8, 30)
    distances = (values[:, None] - clustering.codebook[None, :]).abs()
    chosen = distances.gather(1, clustering.codes.long()[:, None]).squeeze(1)
    assert torch.equal(chosen, distances.min(1).values)


def test_kmeans_error_never_grows_with_iterations() -> None:
    values = torch.randn(5_000, generator=torch.Generator().manual_seed(2)).exp()
    errors = [_within_cluster_error(values, c.codebook, c.codes) for c in (kmeans_1d(values, 8, i) for i in range(6))]
    assert all(later <= earlier * (1 + 1e-6) for earlier, later in itertools.pairwise(errors))


def test_kmeans_stops_early_when_assignments_settle() -> None:
    values = torch.tensor([0.0, 0.0, 2.0, 2.0, 5.0, 5.0])
    clustering = kmeans_1d(values, 3, 30)
    # The grid 0, 2.5, 5 already splits the values right; one update moves 2.5 to 2, and nothing changes after.
    assert clustering.iterations == 1
    assert clustering.codebook.tolist() == [0.0, 2.0, 5.0]
    assert clustering.codes.tolist() == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("config", [WeightQuantization(), BinaryWeights(), WeightClustering()], ids=repr)
def test_finalize_labels_simulation(mnist: tuple[nn.Module, torch.Tensor], config: WeightQuantization) -> None:
    model, x = mnist
    compressed = config.apply(model, x).model
    executable = config.finalize(compressed)
    assert executable.model is compressed
    assert executable.executed_as.startswith("simulated: ")
    assert "no speedup" in executable.notes


def test_finalize_labels() -> None:
    assert WeightQuantization().finalize(nn.Linear(1, 1)).executed_as == (
        "simulated: dequantized fp32 weights (no k-bit kernel)"
    )
    assert BinaryWeights().finalize(nn.Linear(1, 1)).executed_as == "simulated: ±alpha fp32 weights (no 1-bit kernel)"
    assert WeightClustering().finalize(nn.Linear(1, 1)).executed_as == (
        "simulated: codebook-decoded fp32 weights (no lookup kernel)"
    )


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (WeightQuantization, {"bits": 5}, "bits must be one of 2, 3, 4, 6, 8; got 5"),
        (WeightQuantization, {"bits": 1}, "bits must be one of 2, 3, 4, 6, 8; got 1"),
        (WeightQuantization, {"bits": True}, "bits must be one of 2, 3, 4, 6, 8; got True"),
        (WeightQuantization, {"bits": 4.0}, "bits must be one of 2, 3, 4, 6, 8; got 4.0"),
        (WeightQuantization, {"scheme": "asym"}, "scheme must be one of affine, symmetric; got 'asym'"),
        (WeightClustering, {"bits": 0}, "bits must be one of 1, 2, 3, 4, 5, 6, 7, 8; got 0"),
        (WeightClustering, {"bits": 9}, "bits must be one of 1, 2, 3, 4, 5, 6, 7, 8; got 9"),
        (WeightClustering, {"max_iters": 0}, "max_iters must be an integer >= 1, got 0"),
        (WeightClustering, {"max_iters": "30"}, "max_iters must be an integer >= 1, got '30'"),
    ],
)
def test_invalid_config_raises(cls: type, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        cls(**kwargs)


@pytest.mark.parametrize("name", ["quant.bits", "quant.binary", "quant.cluster"])
def test_model_without_layers_is_rejected(name: str) -> None:
    model = nn.Sequential(nn.ReLU())
    config = get(name)()
    with pytest.raises(ValueError, match=f"^{name} found no nn.Conv2d or nn.Linear layer to quantize$"):
        config.check(model)
    with pytest.raises(ValueError, match=f"^{name} found no nn.Conv2d or nn.Linear layer to quantize$"):
        config.apply(model, torch.zeros(1))


def test_unknown_tables_are_rejected() -> None:
    code = WeightCode(torch.zeros(2, dtype=torch.uint8), 1, {"lut": torch.zeros(2)})
    with pytest.raises(ValueError, match=r"^no decoder for tables \['lut'\]"):
        decode_weight(code)


def test_cluster_keeps_a_pruned_layers_zeros_and_shares_the_rest() -> None:
    torch.manual_seed(0)
    weight = torch.randn(16, 32)
    weight[weight.abs() < 1.0] = 0.0  # about two thirds pruned
    layer = nn.Linear(32, 16, bias=False)
    with torch.no_grad():
        layer.weight.copy_(weight)
    result = get("quant.cluster")(bits=3).apply(nn.Sequential(layer), torch.zeros(1, 32))
    clustered = result.model[0].weight.detach()
    assert torch.equal(clustered == 0, weight == 0)
    code = result.codes["0.weight"]
    assert code.tables["codebook"][0] == 0 and len(code.tables["codebook"]) <= 8
    assert torch.equal(code.codes == 0, weight == 0)
    assert len(torch.unique(clustered[weight != 0])) <= 7
