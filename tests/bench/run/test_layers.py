"""The layer-level sweep's GEMM lowering and the two GEMM modules."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from bench.models.registry import resolve_model
from bench.run.layers import CsrGemm, DenseGemm, gemm_pairs, model_gemms

pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks are implicitly disabled")

RESNET18_64 = {
    (64, 3 * 7 * 7, 32 * 32): 1,
    (64, 64 * 9, 16 * 16): 4,
    (128, 64 * 9, 8 * 8): 1,
    (128, 128 * 9, 8 * 8): 3,
    (128, 64, 8 * 8): 1,
    (256, 128 * 9, 4 * 4): 1,
    (256, 256 * 9, 4 * 4): 3,
    (256, 128, 4 * 4): 1,
    (512, 256 * 9, 2 * 2): 1,
    (512, 512 * 9, 2 * 2): 3,
    (512, 256, 2 * 2): 1,
    (1000, 512, 1): 1,
}


def test_resnet18_gemm_shapes() -> None:
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    gemms = model_gemms(model, torch.randn(1, 3, 64, 64))
    assert {(g.m, g.k, g.n): len(g.layers) for g in gemms} == RESNET18_64
    by_shape = {(g.m, g.k, g.n): g for g in gemms}
    assert by_shape[(64, 147, 1024)].layers == ("conv1",)
    assert "fc" in by_shape[(1000, 512, 1)].layers
    for gemm in gemms:
        assert gemm.weight.shape == (gemm.m, gemm.k)


def test_batch_scales_n() -> None:
    model = resolve_model("digits_cnn").build()
    one = {(g.m, g.k): g.n for g in model_gemms(model, torch.zeros(1, 1, 8, 8))}
    three = {(g.m, g.k): g.n for g in model_gemms(model, torch.zeros(3, 1, 8, 8))}
    assert one == {(16, 9): 64, (32, 144): 64, (64, 512): 1, (10, 64): 1}
    assert three == {key: 3 * n for key, n in one.items()}


def test_dense_and_csr_gemm_equal_w_at_x() -> None:
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(24, 40, generator=generator)
    weight[torch.rand(24, 40, generator=generator) < 0.8] = 0
    x = torch.randn(40, 7, generator=generator)
    expected = weight @ x
    torch.testing.assert_close(DenseGemm(weight)(x), expected)
    torch.testing.assert_close(CsrGemm(weight)(x), expected)
    scripted = torch.jit.script(CsrGemm(weight))
    torch.testing.assert_close(scripted(x), expected)


def test_gemm_pairs_prune_each_layer_and_write_artifacts(tmp_path: Path) -> None:
    model = resolve_model("digits_cnn").build()
    gemms, pairs = gemm_pairs(model, torch.zeros(1, 1, 8, 8), 0.75, tmp_path)
    assert len(gemms) == len(pairs) == 4
    for gemm, pair in zip(gemms, pairs, strict=True):
        zeros = float((gemm.weight == 0).float().mean())
        assert zeros == pytest.approx(0.75, abs=1 / gemm.weight.numel() + 1e-6)
        assert pair["input_shape"] == [gemm.k, gemm.n]
        x = torch.randn(gemm.k, gemm.n)
        dense, csr = torch.jit.load(pair["baseline"]), torch.jit.load(pair["candidate"])
        torch.testing.assert_close(csr(x), dense(x), rtol=1e-4, atol=1e-5)
    # the reference model is not pruned in place
    assert all(float((p == 0).float().mean()) < 0.1 for p in model.parameters())
