"""Config base: JSON round trip, unknown keys, and the default finalize."""

from __future__ import annotations

import json

import pytest
from torch import nn

from compressors import Executable, get


def test_to_dict_is_field_values() -> None:
    config = get("prune.unstructured")(sparsity=0.5, scope="layer", execution="csr")
    assert config.to_dict() == {"sparsity": 0.5, "scope": "layer", "execution": "csr"}
    assert get("prune.unstructured").from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_from_dict_fills_defaults() -> None:
    assert get("prune.unstructured").from_dict({"sparsity": 0.5}) == get("prune.unstructured")(sparsity=0.5)


def test_from_dict_refuses_unknown_keys() -> None:
    with pytest.raises(ValueError) as caught:
        get("prune.unstructured").from_dict({"sparsity": 0.5, "foo": 1})
    assert str(caught.value) == ("unknown parameter 'foo' for prune.unstructured; accepted: sparsity, scope, execution")


def test_from_dict_on_a_config_without_fields() -> None:
    with pytest.raises(ValueError) as caught:
        get("none").from_dict({"sparsity": 0.5})
    assert str(caught.value) == "unknown parameter 'sparsity' for none; accepted: (none)"


def test_configs_are_frozen_and_hashable() -> None:
    config = get("prune.channel")()
    with pytest.raises(AttributeError):
        config.macs_removed = 0.1  # type: ignore[misc]
    assert hash(config) == hash(get("prune.channel")(macs_removed=0.5, criterion="l1"))


def test_default_finalize_runs_the_model_as_is() -> None:
    model = nn.Linear(2, 2)
    executable = get("none")().finalize(model)
    assert executable == Executable(model, executed_as="dense", notes="")
