"""Seeds and recovery methods as axes of the matrix, and the training the suite lends a compressor that trains."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from torch import nn

import compressors
from bench import engines
from bench.config.run_config import load_config
from bench.errors import BenchError
from bench.models.references import References
from bench.recovery.lending import lend_training
from bench.run.baselines import Baselines
from bench.run.matrix import Cell, expand
from bench.run.prepare import Preparation
from tests.bench.conftest import run_main

_BASE: dict[str, Any] = {
    "models": ["digits_cnn"], "compressors": {"prune.channel": {}}, "layers": {"models": []},
    "engines": ["torchscript"],
}  # fmt: skip


def _recoveries(recovery: dict[str, Any]) -> list[dict[str, Any]]:
    return [cell.to_json()["recovery"] for cell in expand(load_config(None, {**_BASE, "recovery": recovery}))]


def test_methods_and_seeds_are_axes_and_seed_zero_keeps_the_cell_id() -> None:
    (plain,) = expand(load_config(None, _BASE))
    cells = expand(load_config(None, {**_BASE, "recovery": {"method": ["finetune", "distill"], "seeds": [0, 3]}}))
    assert [cell.to_json()["recovery"] for cell in cells] == [
        {"method": "finetune"},
        {"method": "finetune", "seed": 3},
        {"method": "distill", "temperature": 4.0, "alpha": 0.5},
        {"method": "distill", "temperature": 4.0, "alpha": 0.5, "seed": 3},
    ]
    assert cells[0].id == plain.id
    assert len({cell.id for cell in cells}) == 4
    assert _recoveries({"method": "distill"}) == [{"method": "distill", "temperature": 4.0, "alpha": 0.5}]


def test_a_cell_without_training_has_no_recovery_whatever_the_axes() -> None:
    table = {**_BASE, "compressors": {"none": {}, "quant.int8": {}}, "recovery": {"seeds": [0, 1, 2]}}
    cells = expand(load_config(None, table))
    assert [(cell.compressor, cell.finetune_steps, cell.recovery) for cell in cells] == [
        ("none", 0, ()), ("quant.int8", 0, ()),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("recovery", "message"),
    [
        ({"seeds": []}, "recovery.seeds must list at least one seed"),
        ({"seeds": [-1]}, "recovery.seeds must be integers in 0..2147483647, got -1"),
        ({"seeds": [1, 1]}, r"recovery.seeds lists a seed twice: \[1, 1\]"),
        ({"seeds": [0.5]}, "recovery.seeds must be a list of integers, got 0.5"),
        ({"method": []}, "recovery.method must name at least one method"),
        ({"method": ["finetune", "magic"]}, "recovery.method must be one of finetune, distill.*; got 'magic'"),
    ],
)
def test_bad_axes_are_one_line_errors(recovery: dict[str, Any], message: str) -> None:
    with pytest.raises(BenchError, match=message):
        load_config(None, {**_BASE, "recovery": recovery})


def test_the_cli_takes_both_axes_and_refuses_bad_values_with_exit_2(tmp_path: Path) -> None:
    base = ["run", "--models", "digits_cnn", "--compressors", "prune.channel", "--no-layers", "--store",
            str(tmp_path / "s.sqlite")]  # fmt: skip
    result = run_main([*base, "--seeds", "0,x"])
    assert result.code == 2 and "--seeds expects a comma-separated list of integers, got '0,x'" in result.err
    result = run_main([*base, "--recovery", "finetune,magic"])
    assert result.code == 2 and "recovery.method must be one of" in result.err and "'magic'" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "s.sqlite").exists()


def _same(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[name], second[name]) for name in first)


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> Baselines:
    directory = tmp_path_factory.mktemp("references")
    return Baselines(References(directory / "cache"), directory / "artifacts")


def test_the_lent_training_trains_seeded_keeps_masks_and_knows_the_reference(references: Baselines) -> None:
    reference = references.reference("digits_cnn")
    training = lend_training(reference, steps=30, cell_seed=4)
    assert training.steps == 30 and training.seed == 4
    assert training.reference_steps == reference.reference_steps and training.reference_steps
    assert training.initial_state is not None and training.rewound_state is not None
    for name, value in training.rewound_state(0).items():
        assert torch.equal(value, training.initial_state[name]), name
    pruned = compressors.get("prune.unstructured")(sparsity=0.8).apply(reference.model, torch.zeros(1, 1, 8, 8))
    trained = []
    for _ in range(2):
        model = compressors.get("prune.unstructured")(sparsity=0.8).apply(reference.model, torch.zeros(1, 1, 8, 8))
        training.fit(model.model, 15, masks=model.masks)
        trained.append(model.model.state_dict())
        params = dict(model.model.named_parameters())
        assert all(torch.all(params[name][~mask] == 0) for name, mask in model.masks.items())
    assert _same(trained[0], trained[1])  # seeded: the same
    other_seed = compressors.get("prune.unstructured")(sparsity=0.8).apply(reference.model, torch.zeros(1, 1, 8, 8))
    training.fit(other_seed.model, 15, masks=other_seed.masks, seed=5)
    assert not _same(trained[0], other_seed.model.state_dict())
    assert 0 <= training.evaluate(pruned.model) <= 1


@dataclasses.dataclass(frozen=True)
class _Trains(compressors.CompressorConfig):
    """A compressor that trains, for the suite's side of the contract: it keeps what it was lent."""

    name: ClassVar[str] = "test.trains"
    trains: ClassVar[bool] = True
    lent: ClassVar[list[compressors.Training]] = []

    def apply(self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor] = ()):
        raise AssertionError("a compressor that trains is applied through apply_trained")

    def apply_trained(self, model, example_input, calibration, training):  # type: ignore[no-untyped-def]
        self.lent.append(training)
        trained = compressors.reinitialize(copy.deepcopy(model), 0)
        training.fit(trained, 3)
        return compressors.Compressed(trained, {}, {"trained_steps": 3})


def _cell(recovery: tuple[tuple[str, Any], ...], steps: int = 12) -> Cell:
    return Cell("model", "digits_cnn", "test.trains", (), "cpu", 1, 1, steps, (), recovery)


def test_a_compressor_that_trains_gets_the_cell_budget_and_seed_and_no_recovery_after(
    references: Baselines, tmp_path: Path
) -> None:
    _Trains.lent.clear()
    preparation = Preparation(references, tmp_path)
    artifact = preparation.artifact(_cell((("seed", 7),)), _Trains(), engines.get("torchscript"))
    (training,) = _Trains.lent
    assert (training.steps, training.seed) == (12, 7)
    assert artifact.fields["compressor_info"] == {"trained_steps": 3}  # no recovery facts: none ran
    assert artifact.fields["accuracy"].before_recovery is None
    assert artifact.fields["accuracy"].top1 is not None
    preparation.close()


def test_a_compressor_that_trains_is_skipped_without_a_budget(references: Baselines, tmp_path: Path) -> None:
    preparation = Preparation(references, tmp_path)
    with pytest.raises(compressors.CompressorLimit, match="finetune_steps > 0"):
        preparation.artifact(_cell((), steps=0), _Trains(), engines.get("torchscript"))
