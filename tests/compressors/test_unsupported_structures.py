"""Structures a compressor cannot handle are refused up front with the suite's reason, not met as a raw error or an
unbounded trace: CSR execution where a module reads a layer's `.weight` itself (torchvision's Swin and ViT), channel
pruning of attention (torch-pruning's graph on Swin grows until the process is killed); grouped convs (ResNeXt)
channel-prune as they should.

The transformers are torchvision's real swin_t and vit_b_16, built once for the module without weights.
"""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Iterator

import pytest
import torch
import torch_pruning as tp
import torchvision
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet

from compressors import CompressorLimit
from compressors._channel import attention_blocks
from compressors.channel import ChannelPruning
from compressors.sparse_modules import CSR_ACTION, CsrConv2d, CsrLinear, DirectWeightRead
from compressors.unstructured import UnstructuredPruning
from tests.compressors.conftest import IGNORE_UNCHECKED_CSR, example_input

_CSR = UnstructuredPruning(sparsity=0.5, execution="csr")
_DENSE_ZEROS = "so CSR execution cannot replace it (dense execution measures the same zeros)"


@pytest.fixture(scope="module")
def swin_t() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.get_model("swin_t", weights=None).eval()


@pytest.fixture(scope="module")
def vit_b_16() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.get_model("vit_b_16", weights=None).eval()


# CSR execution: a module that reads its layer's weight.


def test_csr_refuses_swin_whose_attention_reads_qkv_weight(swin_t: nn.Module) -> None:
    with pytest.raises(CompressorLimit) as raised:
        _CSR.finalize(swin_t)
    assert not isinstance(raised.value, AttributeError)
    assert raised.value.action == CSR_ACTION
    assert raised.value.reason == f"ShiftedWindowAttention reads its Linear's .weight directly, {_DENSE_ZEROS}"
    assert type(swin_t.features[1][0].attn.qkv) is nn.Linear  # the model handed in is left as it was


def test_csr_refuses_vit_whose_multihead_attention_reads_out_proj_weight(vit_b_16: nn.Module) -> None:
    # torch's MultiheadAttention is opaque to fx; its forward hands `out_proj.weight` to the fused kernel.
    with pytest.raises(CompressorLimit) as raised:
        _CSR.finalize(vit_b_16)
    assert raised.value.reason == f"MultiheadAttention reads its Linear's .weight directly, {_DENSE_ZEROS}"


def test_dense_execution_of_swin_is_not_refused(swin_t: nn.Module) -> None:
    assert UnstructuredPruning(execution="dense").finalize(swin_t).model is swin_t


class _ReadsWeight(nn.Module):
    """Multiplies by its layer's weight itself (`direct`), or calls the layer; `branchy` adds data-dependent control
    flow, which fx cannot trace."""

    def __init__(self, layer: nn.Linear | nn.Conv2d, *, direct: bool, branchy: bool) -> None:
        super().__init__()
        self.layer, self.direct, self.branchy = layer, direct, branchy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branchy and x.dim() == 0:  # fx cannot branch on a traced value
            return x
        if not self.direct:
            return self.layer(x)
        if isinstance(self.layer, nn.Linear):
            return nn.functional.linear(x, self.layer.weight)
        return nn.functional.conv2d(x, self.layer.weight, groups=self.layer.groups)


_LAYERS = {
    "Linear": (lambda: nn.Linear(4, 4), (1, 4), CsrLinear),
    "Conv2d": (lambda: nn.Conv2d(2, 2, 1), (1, 2, 3, 3), CsrConv2d),
}


@pytest.mark.parametrize("kind", sorted(_LAYERS))
def test_a_read_fx_can_trace_is_refused_at_finalize_for_every_csr_module(kind: str) -> None:
    make, _, _ = _LAYERS[kind]
    with pytest.raises(CompressorLimit, match=f"^_ReadsWeight reads its {kind}'s .weight directly"):
        _CSR.finalize(nn.Sequential(_ReadsWeight(make(), direct=True, branchy=False)))


@IGNORE_UNCHECKED_CSR
@pytest.mark.parametrize("kind", sorted(_LAYERS))
def test_a_read_fx_cannot_trace_is_refused_at_the_read(kind: str) -> None:
    make, shape, csr = _LAYERS[kind]
    model = nn.Sequential(_ReadsWeight(make(), direct=True, branchy=True))
    executable = _CSR.finalize(model)  # fx gives up on the branch, so nothing is known yet
    assert isinstance(executable.model[0].layer, csr)
    assert not hasattr(executable.model[0].layer, "weight")
    # The TorchScript engine traces what it cannot script: the read raises there, as the limit, not a bare error.
    with pytest.raises(DirectWeightRead) as raised:
        torch.jit.trace(executable.model, example_input(shape))
    assert isinstance(raised.value, CompressorLimit) and isinstance(raised.value, AttributeError)
    assert raised.value.action == CSR_ACTION
    assert raised.value.reason == f"_ReadsWeight reads its {kind}'s .weight directly, {_DENSE_ZEROS}"


@IGNORE_UNCHECKED_CSR
def test_layers_that_are_called_or_kept_dense_may_be_read() -> None:
    calls = _ReadsWeight(nn.Linear(4, 4), direct=False, branchy=False)
    grouped = _ReadsWeight(nn.Conv2d(2, 2, 1, groups=2), direct=True, branchy=False)  # stays dense: no CSR form
    executable = _CSR.finalize(nn.Sequential(calls, grouped))
    assert isinstance(executable.model[0].layer, CsrLinear)
    assert type(executable.model[1].layer) is nn.Conv2d
    assert executable.notes == "1 grouped/depthwise convs kept dense (no CSR path)"


# Channel pruning: attention is refused before torch-pruning traces anything.


@contextlib.contextmanager
def _nothing_traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fails at once if torch-pruning starts building a dependency graph (on Swin that build is what grows past the
    machine's memory), and checks that the block took little time and no memory to speak of."""

    def build(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch-pruning's DependencyGraph was built for a model that should have been refused")

    monkeypatch.setattr(tp.DependencyGraph, "build_dependency", build)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    start = time.perf_counter()
    yield
    assert time.perf_counter() - start < 2.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 256 * 1024


@pytest.mark.parametrize(("model_name", "blocks"), [("swin_t", "12 ShiftedWindowAttention"),
                                                    ("vit_b_16", "12 MultiheadAttention")])  # fmt: skip
def test_channel_pruning_refuses_attention_before_tracing(
    model_name: str, blocks: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    model: nn.Module = request.getfixturevalue(model_name)
    ran: list[str] = []
    handle = model.register_forward_pre_hook(lambda *_: ran.append("forward"))
    try:
        with _nothing_traced(monkeypatch), pytest.raises(CompressorLimit) as raised:
            ChannelPruning(macs_removed=0.5).apply(model, torch.randn(1, 3, 224, 224))
    finally:
        handle.remove()
    assert ran == []  # not even one forward: the refusal reads only the module tree
    assert raised.value.action == "prune"
    assert raised.value.reason.startswith(f"torch-pruning cannot prune attention blocks ({blocks}): ")
    assert raised.value.reason.endswith("; prune.unstructured applies to their Linear layers")


def test_attention_blocks_are_the_innermost_modules_with_a_head_count() -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.num_heads = 2  # an outer block: its inner attention is reported instead
            self.attention = nn.MultiheadAttention(8, 2)

    class Heads(nn.Module):
        def __init__(self, heads: object) -> None:
            super().__init__()
            self.heads = heads

    model = nn.Sequential(Block(), Heads(4), Heads(True), Heads(nn.Linear(8, 2)), nn.Linear(8, 8))
    assert [name for name, _ in attention_blocks(model)] == ["0.attention", "1"]
    assert attention_blocks(torchvision.models.resnet18()) == []


# Channel pruning: grouped convs (ResNeXt) are pruned, not refused.


def _resnext(layers: list[int]) -> nn.Module:
    torch.manual_seed(0)
    return ResNet(Bottleneck, layers, groups=32, width_per_group=4, num_classes=10)


def _check_grouped_convs_pruned(model: nn.Module, x: torch.Tensor) -> None:
    result = ChannelPruning(macs_removed=0.5).apply(model, x)
    assert result.info["macs_removed_achieved"] == pytest.approx(0.5, abs=0.02)
    dense = {name: conv for name, conv in model.named_modules() if isinstance(conv, nn.Conv2d) and conv.groups > 1}
    pruned = dict(result.model.named_modules())
    for name, conv in dense.items():
        kept = pruned[name]
        assert isinstance(kept, nn.Conv2d) and kept.groups == conv.groups == 32
        assert kept.out_channels < conv.out_channels and kept.out_channels % 32 == 0
        assert kept.weight.shape == (kept.out_channels, kept.in_channels // 32, 3, 3)
    with torch.no_grad():
        assert result.model.eval()(x).shape == model.eval()(x).shape


def test_grouped_convs_of_a_small_resnext_are_pruned_by_whole_groups() -> None:
    _check_grouped_convs_pruned(_resnext([1, 1, 1, 1]), example_input((1, 3, 64, 64)))


@pytest.mark.slow
def test_resnext50_32x4d_is_channel_pruned() -> None:
    torch.manual_seed(0)
    model = torchvision.models.get_model("resnext50_32x4d", weights=None)
    _check_grouped_convs_pruned(model, example_input((1, 3, 64, 64)))
