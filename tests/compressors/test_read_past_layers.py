"""Compressors that swap layers for other modules leave a layer whose `.weight` the model's own code reads (Swin's
attention hands `qkv.weight` to F.linear, torch's MultiheadAttention hands `out_proj.weight` to its fused kernel):
low-rank factorization and depthwise-separable pairs keep it dense with the reason, dynamic int8 keeps it fp32, and
where fx cannot see the read the swapped-in pair raises the suite's limit at the read, never a bare AttributeError.

The transformers are torchvision's own Swin and ViT classes at toy sizes, so the structure is the real one.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.ao.nn.quantized import dynamic as nnqd
from torchvision.models.swin_transformer import ShiftedWindowAttention, SwinTransformer
from torchvision.models.vision_transformer import VisionTransformer

from compressors import CompressorLimit
from compressors._direct_reads import WeightReadPast
from compressors.dsconv import DepthwiseSeparable
from compressors.lowrank import LowRankSVD
from compressors.quant_int8 import DynamicInt8Quantization
from tests.compressors.conftest import example_input

_INPUT = (1, 3, 16, 16)
_SWIN_READ = "ShiftedWindowAttention reads its Linear's .weight directly, so {} cannot replace it"


def _tiny_swin() -> nn.Module:
    """Two stages of torchvision's Swin (a patch-embedding conv and 10 Linear layers, 4 of them attention projections
    read by their ShiftedWindowAttention) on 16x16 inputs."""
    torch.manual_seed(0)
    return SwinTransformer([2, 2], 8, [1, 1], [1, 2], [2, 2], num_classes=3).eval()


def _tiny_vit() -> nn.Module:
    """One encoder layer of torchvision's ViT (MultiheadAttention, whose `out_proj` it reads) with a random head."""
    torch.manual_seed(0)
    model = VisionTransformer(16, 8, num_layers=1, num_heads=2, hidden_dim=8, mlp_dim=16, num_classes=3).eval()
    nn.init.normal_(model.heads.head.weight)  # torchvision zeroes it: every output would be 0
    return model


def _attention_projections(model: nn.Module) -> list[str]:
    return [
        f"{name}.{child}"
        for name, module in model.named_modules()
        if isinstance(module, ShiftedWindowAttention)
        for child in ("qkv", "proj")
    ]


def _close(model: nn.Module, reference: nn.Module, tolerance: float) -> None:
    x = example_input(_INPUT)
    with torch.no_grad():
        expected = reference(x)
        torch.testing.assert_close(model(x), expected, atol=tolerance * float(expected.abs().max()), rtol=0)


def test_lowrank_keeps_the_attention_projections_swin_reads_and_factorizes_the_rest() -> None:
    model = _tiny_swin()
    config = LowRankSVD(rank_ratio=1.0, skip_if_no_saving=False)  # full rank: the factorized model is exact
    result = config.apply(model, example_input(_INPUT))
    read = _attention_projections(model)
    assert len(read) == 4
    assert {name: result.info["layers_skipped"][name] for name in read} == dict.fromkeys(
        read, _SWIN_READ.format("a factorized pair")
    )
    assert set(result.info["layers_skipped"]) == set(read)
    assert result.info["layers_factorized"] == 10 - 4 + 1  # the other Linears and the patch-embedding conv
    assert all(type(result.model.get_submodule(name)) is nn.Linear for name in read)
    executable = config.finalize(result.model)
    _close(executable.model, model, 1e-4)
    torch.jit.trace(executable.model, example_input(_INPUT))  # the TorchScript engine's fallback runs it too


def test_lowrank_keeps_the_out_proj_vit_multihead_attention_reads() -> None:
    model = _tiny_vit()
    result = LowRankSVD(rank_ratio=1.0, skip_if_no_saving=False).apply(model, example_input(_INPUT))
    out_proj = "encoder.layers.encoder_layer_0.self_attention.out_proj"
    reason = "MultiheadAttention reads its Linear's .weight directly, so a factorized pair cannot replace it"
    assert result.info["layers_skipped"] == {out_proj: reason}
    assert isinstance(result.model.get_submodule(out_proj), nn.Linear)
    assert isinstance(result.model.get_submodule("heads.head"), nn.Sequential)  # factorized
    _close(result.model, model, 1e-4)  # eval without gradients: the fused path reads out_proj.weight


class _ReadsWeight(nn.Module):
    """Runs its layer's weight itself (not the layer), after a branch on the input's values that fx cannot trace."""

    def __init__(self, layer: nn.Linear | nn.Conv2d, *, branchy: bool) -> None:
        super().__init__()
        self.layer, self.branchy = layer, branchy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branchy and bool(x.sum() > 1e9):
            return x
        if isinstance(self.layer, nn.Linear):
            return nn.functional.linear(x, self.layer.weight)
        return nn.functional.conv2d(x, self.layer.weight, padding=1)


@pytest.mark.parametrize(
    ("config", "layer", "shape", "action", "replacement"),
    [
        (LowRankSVD(rank_ratio=0.25), lambda: nn.Linear(16, 16), (2, 16), "factorize", "a factorized pair"),
        (DepthwiseSeparable(), lambda: nn.Conv2d(4, 4, 3, padding=1), (1, 4, 6, 6), "swap the convs of",
         "a depthwise-separable pair"),
    ],
)  # fmt: skip
def test_a_read_fx_cannot_see_raises_the_limit_at_the_read(
    config: LowRankSVD | DepthwiseSeparable, layer: object, shape: tuple[int, ...], action: str, replacement: str
) -> None:
    model = nn.Sequential(_ReadsWeight(layer(), branchy=True))  # type: ignore[operator]
    result = config.apply(model, example_input(shape))  # fx gives up on the branch, so the layer is swapped
    kind = "Linear" if action == "factorize" else "Conv2d"
    with pytest.raises(WeightReadPast) as raised:
        result.model(example_input(shape))
    assert isinstance(raised.value, CompressorLimit) and isinstance(raised.value, AttributeError)
    assert raised.value.action == action
    reader = f"_ReadsWeight reads its {kind}'s .weight directly"
    assert raised.value.reason == f"{reader}, so {replacement} cannot replace it"
    assert not hasattr(result.model[0].layer, "weight")


def test_dsconv_keeps_a_conv_whose_weight_is_read() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), _ReadsWeight(nn.Conv2d(4, 4, 3, padding=1), branchy=False))
    result = DepthwiseSeparable().apply(model, example_input((1, 3, 6, 6)))
    reason = "_ReadsWeight reads its Conv2d's .weight directly, so a depthwise-separable pair cannot replace it"
    assert result.info["convs_kept"] == {"1.layer": reason}
    assert result.info["convs_replaced"] == 1
    assert type(result.model[1].layer) is nn.Conv2d
    result.model(example_input((1, 3, 6, 6)))


def test_dynamic_int8_keeps_the_attention_projections_swin_reads_fp32() -> None:
    model = _tiny_swin()
    config = DynamicInt8Quantization()
    result = config.apply(model, example_input(_INPUT))
    read = _attention_projections(model)
    assert result.info["quantized_modules"] == 10 - 4
    assert result.info["kept_fp32"] == sorted(read)
    executable = config.finalize(result.model)
    assert all(type(executable.model.get_submodule(name)) is nn.Linear for name in read)
    assert isinstance(executable.model.get_submodule("head"), nnqd.Linear)
    assert executable.notes == f"4 Linear layers left fp32 ({_SWIN_READ.format('a dynamic int8 Linear')})"
    _close(executable.model, model, 0.1)


def test_dynamic_int8_refuses_a_model_whose_every_linear_is_read() -> None:
    model = nn.Sequential(_ReadsWeight(nn.Linear(4, 4), branchy=False))
    with pytest.raises(CompressorLimit) as raised:
        DynamicInt8Quantization().finalize(model)
    assert raised.value.action == "quantize"
    assert raised.value.reason == (
        "_ReadsWeight reads its Linear's .weight directly, so a dynamic int8 Linear cannot replace it; no other"
        " nn.Linear is left to quantize"
    )
