"""`chain`: stages parsed from one string, applied in order, with honest masks, codes and per-stage results."""

from __future__ import annotations

import json

import pytest
import torch

from compressors import get
from compressors.chain import parse_stages
from tests.compressors.conftest import example_input, mnist_cnn

PRUNE_THEN_QUANTIZE = "prune.unstructured(sparsity=0.8;scope=layer)+quant.bits(bits=4)"


def test_stages_parse_into_validated_configs() -> None:
    first, second = parse_stages(" prune.unstructured(sparsity=0.8; scope=layer) + quant.bits(bits=4) ")
    assert (first.name, first.sparsity, first.scope) == ("prune.unstructured", 0.8, "layer")
    assert (second.name, second.bits) == ("quant.bits", 4)
    assert [stage.name for stage in parse_stages("none+quant.binary")] == ["none", "quant.binary"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("quant.bits(bits=4)", "at least two stages"),
        (
            "prune.unstructured(sparsity=0.9)+quant.bitz(bits=4)",
            "unknown compressor 'quant.bitz'; did you mean 'quant.bits'",
        ),
        (
            "prune.unstructured(sparsity=1.5)+quant.bits",
            r"stage prune.unstructured: sparsity must be in \[0, 1\), got 1.5",
        ),
        ("prune.unstructured(sparsity)+quant.bits", "expected KEY=VALUE in prune.unstructured"),
        ("chain+quant.bits", "a chain cannot contain a chain"),
        ("prune.unstructured[0.9]+quant.bits", "expected NAME\\(KEY=VALUE;...\\)"),
    ],
)
def test_bad_stages_are_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        get("chain")(stages=spec)
    assert "\n" not in str(error.value)


def test_prune_then_quantize_keeps_the_zeros_and_stores_the_last_stage_codes() -> None:
    model, x = mnist_cnn(), example_input((1, 1, 28, 28))
    result = get("chain")(stages=PRUNE_THEN_QUANTIZE).apply(model, x)
    assert len(result.stages) == 2
    assert result.stages[0].codes == {} and result.codes == result.stages[1].codes
    parameters = dict(result.model.named_parameters())
    assert result.masks, "the pruning masks still hold after 4-bit affine quantization (zero is on its grid)"
    for name, mask in result.masks.items():
        assert torch.all(parameters[name][~mask] == 0)
    assert result.info["masks_undone_by_later_stages"] == []
    assert [stage["name"] for stage in result.info["stages"]] == ["prune.unstructured", "quant.bits"]
    assert json.loads(json.dumps(result.info)) == result.info


def test_a_stage_that_undoes_sparsity_is_reported_not_hidden() -> None:
    model, x = mnist_cnn(), example_input((1, 1, 28, 28))
    result = get("chain")(stages="prune.unstructured(sparsity=0.5;scope=layer)+quant.binary").apply(model, x)
    assert result.masks == {}
    assert len(result.info["masks_undone_by_later_stages"]) == len(result.stages[0].masks)


def test_the_chain_executes_as_its_last_stage_and_recovers_only_if_every_stage_can() -> None:
    chain = get("chain")(stages="prune.unstructured(sparsity=0.5;execution=csr)+quant.bits(bits=8)")
    model, x = mnist_cnn(), example_input((1, 1, 28, 28))
    assert chain.finalize(chain.apply(model, x).model).executed_as.startswith("simulated")
    assert chain.recoverable
    assert not get("chain")(stages="prune.unstructured(sparsity=0.5)+quant.int8").recoverable


def test_check_asks_the_first_stage() -> None:
    only_linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    with pytest.raises(ValueError, match="no standard KxK convolution"):
        get("chain")(stages="arch.dsconv+quant.bits(bits=4)").check(only_linear)
