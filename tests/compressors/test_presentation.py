"""What a compressor declares about itself for reports, and the import that reading it costs: no torch."""

from __future__ import annotations

import dataclasses
import importlib
import json
import subprocess
import sys
from collections.abc import Sequence

import pytest
import torch
from torch import nn

from compressors import Compressed, CompressorConfig, Presentation, names, register, registry
from compressors.presentation import SERIES, percent, template, words

HEAVY = ("torch", "torch_pruning", "torchvision")
FAMILY_MODULES = (
    "chain", "channel", "dsconv", "early_exit", "identity", "iterative", "lowrank", "quant_int8", "quant_weights",
    "slimmable", "unstructured",
)  # fmt: skip


def _heavy_modules_after(code: str) -> list[str]:
    """The heavy modules a fresh interpreter has loaded after running `code`."""
    loaded = f"sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})"
    probe = f"{code}\nimport json, sys\nprint(json.dumps({loaded}))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_reading_every_config_and_its_presentation_imports_no_torch() -> None:
    code = (
        "import compressors\n"
        "for name in compressors.names():\n"
        "    config = compressors.get(name)\n"
        "    config.presentation.family_of({})\n"
        "    config.from_dict(config().to_dict())\n"
        "compressors.get('prune.unstructured').from_dict({'sparsity': 0.5, 'execution': 'csr'})"
    )
    assert _heavy_modules_after(code) == []


def test_transforming_a_model_imports_torch_on_first_use() -> None:
    assert _heavy_modules_after("from compressors.unstructured import prunable_layers") == ["torch"]


@pytest.mark.parametrize("module", FAMILY_MODULES)
def test_every_public_name_of_a_family_module_resolves(module: str) -> None:
    loaded = importlib.import_module(f"compressors.{module}")
    for name in loaded.__all__:
        assert getattr(loaded, name) is not None, f"compressors.{module}.{name}"
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        getattr(loaded, "no_such_name")  # noqa: B009 - the lookup a typo makes


@pytest.mark.parametrize("name", names())
def test_every_compressor_declares_a_short_name_and_a_family(name: str) -> None:
    shown = registry.get(name).presentation
    assert shown.short and shown.family != "other"
    assert shown.series_of({}) in (None, *SERIES)


def test_a_csr_variant_takes_its_own_family_and_series() -> None:
    shown = registry.get("prune.unstructured").presentation
    assert (shown.family_of({"execution": "dense"}), shown.series_of({"execution": "dense"})) == (
        "unstructured", SERIES[0],
    )  # fmt: skip
    assert (shown.family_of({"execution": "csr"}), shown.series_of({"execution": "csr"})) == (
        "unstructured CSR", SERIES[1],
    )  # fmt: skip
    assert registry.get("prune.channel").presentation.series_of({}) == SERIES[2]


def test_how_a_value_reads() -> None:
    shown = Presentation(formats={"share": percent, "bits": template("{}-bit"), "rule": words({"entropy": "ent"})})
    assert [shown.value_text("share", 0.125), shown.value_text("bits", 4), shown.value_text("rule", "entropy")] == [
        "12.5%", "4-bit", "ent",
    ]  # fmt: skip
    assert shown.value_text("scope", "layer") == "layer"
    assert shown.value_text("seed", 3) == "seed=3"
    assert shown.value_text("engine", "8") == "engine=8"


def test_a_series_outside_the_headline_figure_is_refused() -> None:
    with pytest.raises(ValueError, match="presentation series must be one of"):
        Presentation(series="low-rank")


@dataclasses.dataclass(frozen=True)
class _Typo(CompressorConfig):
    presentation = Presentation(family="typos", headline=("sparsty",))

    sparsity: float = 0.5

    def apply(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor] = ()
    ) -> Compressed:
        return Compressed(model=model, masks={}, info={})


def test_registering_a_presentation_that_names_a_missing_parameter_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    with pytest.raises(ValueError, match=r"names 'sparsty', not a parameter of _Typo; its parameters: sparsity"):
        register("test.typo")(_Typo)
    assert "test.typo" not in registry.names()
