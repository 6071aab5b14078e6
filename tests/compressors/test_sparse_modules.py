"""CSR Linear/Conv2d: same outputs as the dense layers, eagerly and as saved TorchScript."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from compressors.sparse_modules import CsrConv2d, CsrLinear, to_csr
from tests.compressors.conftest import IGNORE_UNCHECKED_CSR

pytestmark = IGNORE_UNCHECKED_CSR


def _sparsify(layer: nn.Module, fraction: float = 0.7) -> nn.Module:
    """Zeroes about `fraction` of the layer's weights, so the CSR path really skips entries."""
    torch.manual_seed(2)
    with torch.no_grad():
        layer.weight.mul_(torch.rand_like(layer.weight) >= fraction)
    return layer


def _round_trip(module: nn.Module, tmp_path: Path) -> torch.jit.ScriptModule:
    path = tmp_path / "module.pt"
    torch.jit.save(torch.jit.script(module), str(path))
    return torch.jit.load(str(path))


def test_to_csr_encodes_the_nonzeros() -> None:
    weight = torch.tensor([[0.0, 2.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 3.0]])
    crow, col, values = to_csr(weight)
    assert crow.dtype == col.dtype == torch.int32
    assert crow.tolist() == [0, 1, 1, 3]
    assert col.tolist() == [1, 0, 2]
    assert values.tolist() == [2.0, 1.0, 3.0]
    assert torch.equal(torch.sparse_csr_tensor(crow, col, values, (3, 3)).to_dense(), weight)


def test_to_csr_refuses_non_matrices() -> None:
    with pytest.raises(ValueError, match=r"^to_csr needs a 2-D tensor, got shape \(2, 2, 2\)$"):
        to_csr(torch.ones(2, 2, 2))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("input_shape", [(3, 12), (3, 4, 12)])
def test_csr_linear_matches_dense(bias: bool, input_shape: tuple[int, ...], tmp_path: Path) -> None:
    dense = _sparsify(nn.Linear(12, 7, bias=bias))
    sparse = CsrLinear.from_dense(dense)
    x = torch.randn(input_shape)
    with torch.no_grad():
        expected = dense(x)
        torch.testing.assert_close(sparse(x), expected)
        torch.testing.assert_close(_round_trip(sparse, tmp_path)(x), expected)
    assert sparse.values.numel() == int((dense.weight != 0).sum())


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "bias"),
    [
        (1, 0, 1, True),
        (1, 1, 1, False),
        (2, 1, 1, True),
        ((2, 1), (1, 2), (2, 1), True),
        (3, 2, 2, False),
    ],
)
def test_csr_conv_matches_dense(
    stride: int | tuple[int, int],
    padding: int | tuple[int, int],
    dilation: int | tuple[int, int],
    bias: bool,
    tmp_path: Path,
) -> None:
    dense = _sparsify(nn.Conv2d(5, 6, (3, 2), stride=stride, padding=padding, dilation=dilation, bias=bias))
    sparse = CsrConv2d.from_dense(dense)
    x = torch.randn(3, 5, 17, 13)
    with torch.no_grad():
        expected = dense(x)
        torch.testing.assert_close(sparse(x), expected)
        torch.testing.assert_close(_round_trip(sparse, tmp_path)(x), expected)


def test_all_zero_weights_leave_only_the_bias() -> None:
    dense = nn.Linear(4, 3)
    with torch.no_grad():
        dense.weight.zero_()
    sparse = CsrLinear.from_dense(dense)
    with torch.no_grad():
        assert torch.equal(sparse(torch.randn(2, 4)), dense.bias.expand(2, 3))
    assert sparse.values.numel() == 0


@pytest.mark.parametrize(
    ("conv", "message"),
    [
        (nn.Conv2d(4, 4, 3, groups=4), "CsrConv2d needs groups == 1, got 4"),
        (
            nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"),
            "CsrConv2d needs padding_mode 'zeros', got 'reflect'",
        ),
        (nn.Conv2d(4, 4, 3, padding="same"), "CsrConv2d needs numeric padding, got 'same'"),
    ],
)
def test_convs_without_csr_form_are_refused(conv: nn.Conv2d, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        CsrConv2d.from_dense(conv)
