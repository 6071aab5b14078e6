"""Size (real encodings) and MACs."""

from __future__ import annotations

import gzip

import pytest
import torch
from torch import nn

import compressors
from bench.measure.flops import macs_report
from bench.measure.size import decode_csr_state, dense_bytes, encode_csr_state, size_report
from bench.models.registry import resolve_model

pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks are implicitly disabled")


def _pruned_digits(sparsity: float = 0.9) -> nn.Module:
    model = resolve_model("digits_cnn").build()
    return compressors.get("prune.unstructured")(sparsity=sparsity).apply(model, torch.zeros(1, 1, 8, 8)).model


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach() for name, tensor in model.state_dict().items()}


def test_csr_round_trip_values_equal() -> None:
    state = _state(_pruned_digits())
    decoded = decode_csr_state(encode_csr_state(state))
    assert decoded.keys() == state.keys()
    for name, tensor in state.items():
        assert decoded[name].shape == tensor.shape
        assert decoded[name].dtype == tensor.dtype
        assert torch.equal(decoded[name], tensor), name


def test_csr_round_trip_bit_for_bit() -> None:
    state = _state(_pruned_digits())
    decoded = decode_csr_state(encode_csr_state(state))
    for name, tensor in state.items():
        assert torch.equal(decoded[name].view(torch.int32), tensor.view(torch.int32)), name


def test_csr_round_trip_bit_for_bit_without_negative_zeros() -> None:
    torch.manual_seed(0)
    weight = torch.randn(20, 3, 3, 3)
    weight[weight.abs() < 1.0] = 0.0  # +0.0 only
    state = {"w": weight, "b": torch.randn(20), "steps": torch.tensor(7)}
    decoded = decode_csr_state(encode_csr_state(state))
    assert torch.equal(decoded["w"].view(torch.int32), weight.view(torch.int32))
    assert torch.equal(decoded["b"], state["b"]) and int(decoded["steps"]) == 7


def test_params_nonzero_and_sizes() -> None:
    dense = resolve_model("digits_cnn").build()
    pruned = _pruned_digits(0.9)
    dense_report, pruned_report = size_report(dense), size_report(pruned)
    assert pruned_report["params_total"] == dense_report["params_total"] == sum(p.numel() for p in dense.parameters())
    assert pruned_report["params_nonzero"] == sum(int((p != 0).sum()) for p in pruned.parameters())
    assert pruned_report["params_nonzero"] < 0.2 * pruned_report["params_total"]
    # masked pruning leaves the dense file as large as before; gzip and CSR see the zeros
    assert pruned_report["size_dense_bytes"] == dense_report["size_dense_bytes"]
    assert pruned_report["size_gzip_bytes"] < dense_report["size_gzip_bytes"]
    assert pruned_report["size_csr_bytes"] < dense_report["size_csr_bytes"]
    assert pruned_report["size_csr_bytes"] < pruned_report["size_dense_bytes"]


def test_sizes_are_lengths_of_real_encodings() -> None:
    model = _pruned_digits()
    report = size_report(model)
    state = _state(model)
    dense = dense_bytes(state)
    assert report["size_dense_bytes"] == len(dense)
    assert report["size_csr_bytes"] == len(encode_csr_state(state))
    assert report["size_gzip_bytes"] == len(gzip.compress(dense, compresslevel=6, mtime=0))
    assert gzip.decompress(gzip.compress(dense, compresslevel=6, mtime=0)) == dense


def _zero_fraction(module: nn.Module, fraction: float) -> None:
    generator = torch.Generator().manual_seed(0)
    weight = module.weight.data.view(-1)
    weight[torch.randperm(weight.numel(), generator=generator)[: int(round(fraction * weight.numel()))]] = 0.0
    weight[weight == 0] = 0.0
    assert int((module.weight == 0).sum()) == int(round(fraction * module.weight.numel()))


@pytest.mark.parametrize("batch", [1, 3])
def test_macs_linear_in_a_container(batch: int) -> None:
    torch.manual_seed(0)
    linear = nn.Linear(100, 50)
    _zero_fraction(linear, 0.8)
    report = macs_report(nn.Sequential(linear), torch.randn(batch, 100))
    assert report["macs_dense"] == 5000 * batch
    assert report["macs_effective"] == pytest.approx(1000 * batch, rel=0.01)


def test_macs_bare_linear() -> None:
    torch.manual_seed(0)
    linear = nn.Linear(100, 50)
    _zero_fraction(linear, 0.8)
    report = macs_report(linear, torch.randn(2, 100))
    assert report["macs_dense"] == 10000
    assert report["macs_effective"] == pytest.approx(2000, rel=0.01)


@pytest.mark.parametrize("batch", [1, 2])
def test_macs_conv2d(batch: int) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 8, 3, padding=1, stride=2, bias=False)
    _zero_fraction(conv, 0.75)
    # 10x10 input, stride 2, padding 1 -> 5x5 outputs
    dense = 5 * 5 * 4 * 3 * 3 * 8 * batch
    report = macs_report(nn.Sequential(conv), torch.randn(batch, 4, 10, 10))
    assert report["macs_dense"] == dense
    assert report["macs_effective"] == pytest.approx(0.25 * dense, rel=0.01)


def test_macs_of_a_real_model_and_its_channel_pruned_copy() -> None:
    model = resolve_model("digits_cnn").build()
    x = torch.zeros(1, 1, 8, 8)
    expected = 64 * 1 * 9 * 16 + 64 * 16 * 9 * 32 + 512 * 64 + 64 * 10
    base = macs_report(model, x)
    assert base["macs_dense"] == expected and base["macs_effective"] == expected
    pruned = compressors.get("prune.channel")(macs_removed=0.5).apply(model, x).model
    report = macs_report(pruned, x)
    assert report["macs_dense"] == report["macs_effective"] < 0.6 * expected


class _LayerScaled(nn.Module):
    """A conv times a learned per-channel scale, as ConvNeXt blocks end."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.scale = nn.Parameter(torch.full((8, 1, 1), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * self.scale


def test_macs_of_a_model_prepared_for_int8_with_a_layer_scale() -> None:
    torch.manual_seed(0)
    model = _LayerScaled().eval()
    x = torch.randn(1, 3, 6, 6)
    prepared = compressors.get("quant.int8")(calibration_batches=1).apply(model, x).model
    observed = {key: value.clone() for key, value in prepared.state_dict().items()}
    report = macs_report(prepared, 10 * x)
    assert report == macs_report(model, x)
    assert report["macs_dense"] >= 6 * 6 * 3 * 9 * 8
    # The counting pass observed nothing: the calibrated ranges are the ones calibration fixed.
    assert all(torch.equal(observed[key], value) for key, value in prepared.state_dict().items())
    assert all(parameter.requires_grad for parameter in prepared.parameters())
