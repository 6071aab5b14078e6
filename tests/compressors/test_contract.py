"""Contract every registered compressor must meet, parametrized over the registry so new ones get it free."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from compressors import Compressed, CompressorConfig, CompressorLimit, Executable, get, names
from tests.compressors.conftest import IGNORE_UNCHECKED_CSR, MODELS, example_input

pytestmark = IGNORE_UNCHECKED_CSR


@dataclass
class Case:
    config: CompressorConfig
    model: nn.Module
    state_before: dict[str, torch.Tensor]
    example_input: torch.Tensor
    compressed: Compressed
    executable: Executable


@pytest.fixture(scope="module", params=names())
def compressor_name(request: pytest.FixtureRequest) -> str:
    return request.param


# (compressor, model) -> the start of the limit the compressor reports there by design: the contract checks that it
# says so, and has nothing else to check.
KNOWN_LIMITS = {("dynamic.width", "tiny_resnet"): "dynamic.width slims an nn.Sequential"}


@pytest.fixture(scope="module", params=sorted(MODELS))
def case(request: pytest.FixtureRequest, compressor_name: str) -> Case:
    factory, shape = MODELS[request.param]
    model = factory()
    state_before = {key: value.clone() for key, value in model.state_dict().items()}
    x = example_input(shape)
    config = get(compressor_name)()
    limit = KNOWN_LIMITS.get((compressor_name, request.param))
    if limit is not None:
        with pytest.raises(CompressorLimit) as caught:
            config.apply(model, x)
        assert caught.value.reason.startswith(limit)
        pytest.skip(f"{compressor_name} on {request.param}: {caught.value.reason}")
    compressed = config.apply(model, x)
    return Case(config, model, state_before, x, compressed, config.finalize(compressed.model))


def _outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x)


def test_output_shape_unchanged(case: Case) -> None:
    expected = _outputs(case.model, case.example_input).shape
    assert _outputs(case.compressed.model, case.example_input).shape == expected


def test_input_model_untouched(case: Case) -> None:
    after = case.model.state_dict()
    assert after.keys() == case.state_before.keys()
    for key, before in case.state_before.items():
        assert torch.equal(after[key], before), key
    assert case.compressed.model is not case.model
    assert all(not module._forward_hooks for module in case.model.modules())


def test_config_round_trips_through_json(compressor_name: str) -> None:
    config = get(compressor_name)()
    data = json.loads(json.dumps(config.to_dict()))
    assert type(config).from_dict(data) == config
    assert config.name == compressor_name


def test_info_is_json_native(case: Case) -> None:
    assert json.loads(json.dumps(case.compressed.info)) == case.compressed.info


def test_masks_name_parameters_and_cover_zeros(case: Case) -> None:
    parameters = dict(case.compressed.model.named_parameters())
    for name, mask in case.compressed.masks.items():
        assert name in parameters
        assert mask.dtype == torch.bool
        assert mask.shape == parameters[name].shape
        assert torch.all(parameters[name][~mask] == 0), name


def _torchscript(model: nn.Module, x: torch.Tensor) -> torch.jit.ScriptModule:
    """Scripts `model`, or traces it where scripting fails, as the suite does before saving an artifact."""
    try:
        return torch.jit.script(model)
    except Exception:  # noqa: BLE001 - any scripting failure sends the suite to tracing
        return torch.jit.trace(model, x)


def test_finalized_model_scripts_and_matches(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _outputs(case.compressed.model, case.example_input)
    if case.executable.quantized_engine is not None:
        # The timing worker sets this engine before loading; int8 kernels behave differently under another.
        monkeypatch.setattr(torch.backends.quantized, "engine", case.executable.quantized_engine)
    scripted = _torchscript(case.executable.model.eval(), case.example_input)
    with torch.no_grad():
        actual = scripted(case.example_input)
    # Lossy compressors (int8) declare how far their executable may drift from the trainable model, measured
    # relative to the output scale; exact ones keep the default.
    atol = getattr(type(case.config), "finalize_atol", 1e-4)
    tolerance = atol * max(1.0, expected.abs().max().item())
    torch.testing.assert_close(actual, expected, atol=tolerance, rtol=0)
    assert case.executable.executed_as
