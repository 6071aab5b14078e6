"""Registry: registration, lookup, and the errors a user sees for a wrong name."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from compressors import Compressed, CompressorConfig, UnknownCompressorError, get, names, register, registry


@dataclass(frozen=True)
class _Dummy(CompressorConfig):
    def apply(self, model: nn.Module, example_input: torch.Tensor) -> Compressed:
        return Compressed(model=model, masks={}, info={})


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lets a test register names without leaking them into other tests' `names()`."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_builtins_are_registered_and_sorted() -> None:
    assert {"none", "prune.channel", "prune.unstructured"} <= set(names())
    assert names() == sorted(names())


def test_get_returns_the_class_with_its_name() -> None:
    cls = get("prune.unstructured")
    assert issubclass(cls, CompressorConfig)
    assert cls.name == "prune.unstructured"


@pytest.mark.usefixtures("isolated_registry")
def test_register_sets_name_and_makes_it_gettable() -> None:
    @register("test.dummy")
    @dataclass(frozen=True)
    class Registered(_Dummy):
        pass

    assert Registered.name == "test.dummy"
    assert get("test.dummy") is Registered
    assert "test.dummy" in names()


@pytest.mark.usefixtures("isolated_registry")
def test_registering_a_name_twice_fails() -> None:
    with pytest.raises(ValueError, match=r"^compressor 'none' is already registered by compressors\.identity\."):
        register("none")(_Dummy)
    assert get("none") is not _Dummy


@pytest.mark.parametrize("bad", ["Prune.Channel", "prune-channel", "prune.channel.x", "", ".x", "1prune"])
def test_malformed_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="compressor name must be lowercase 'family.variant'"):
        register(bad)


@pytest.mark.usefixtures("isolated_registry")
def test_only_compressor_configs_register() -> None:
    with pytest.raises(TypeError, match="needs a CompressorConfig subclass"):
        register("test.notaconfig")(dict)  # type: ignore[arg-type]


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(UnknownCompressorError) as caught:
        get("prune.unstructred")
    valid = ", ".join(names())
    assert str(caught.value) == (
        f"unknown compressor 'prune.unstructred'; did you mean 'prune.unstructured'? valid: {valid}"
    )
    assert isinstance(caught.value, KeyError)


def test_unknown_name_without_close_match_lists_valid_names() -> None:
    with pytest.raises(UnknownCompressorError) as caught:
        get("zzz")
    assert str(caught.value) == f"unknown compressor 'zzz'; valid: {', '.join(names())}"
