"""Matrix expansion: counts, stable ids, and fine-tuning only where a model has data and is compressed."""

from __future__ import annotations

import dataclasses

import pytest

from bench.config.run_config import load_config
from bench.run.matrix import LAYER_COMPRESSOR, Cell, expand

GRID = {
    "none": {},
    "prune.unstructured": {"sparsity": [0.5, 0.9], "execution": ["dense", "csr"]},
    "prune.channel": {"macs_removed": [0.5, 0.7, 0.9]},
}


def _config(**overrides):
    base = {
        "models": ["digits_cnn", "resnet18"],
        "compressors": GRID,
        "threads": [1, 2],
        "batch": [1, 4],
        "finetune_steps": 9,
    }
    base.update(overrides)
    return load_config(None, base)


def test_cell_count_with_layers_only_for_models_in_the_run() -> None:
    config = _config(layers={"models": ["resnet18", "mnist_cnn"], "sparsities": [0.5, 0.9, 0.99]})
    cells = expand(config)
    grid_points = 1 + 2 * 2 + 3
    model_cells = 2 * grid_points * 1 * 2 * 2 * 2  # models x grid x targets x threads x batch x engines
    layer_cells = 1 * 3 * 1 * 2 * 2  # mnist_cnn is not in the run's models
    assert len(cells) == model_cells + layer_cells
    assert sum(c.kind == "model" for c in cells) == model_cells
    layers = [c for c in cells if c.kind == "layers"]
    assert {c.model for c in layers} == {"resnet18"}
    assert {c.compressor for c in layers} == {LAYER_COMPRESSOR}
    assert sorted({dict(c.params)["sparsity"] for c in layers}) == [0.5, 0.9, 0.99]
    # model cells come first
    assert [c.kind for c in cells] == ["model"] * model_cells + ["layers"] * layer_cells


def test_no_layer_cells_when_layer_models_empty() -> None:
    cells = expand(_config(layers={"models": []}))
    assert all(c.kind == "model" for c in cells)


def test_ids_are_stable_and_unique() -> None:
    first = [c.id for c in expand(_config())]
    second = [c.id for c in expand(_config())]
    assert first == second
    assert len(set(first)) == len(first)
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in first)


BASE = Cell(
    "model",
    "digits_cnn",
    "prune.unstructured",
    (("execution", "dense"), ("scope", "global"), ("sparsity", 0.9)),
    "cpu",
    1,
    1,
    5,
)


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "layers"},
        {"model": "mnist_cnn"},
        {"compressor": "prune.channel"},
        {"params": (("execution", "csr"), ("scope", "global"), ("sparsity", 0.9))},
        {"params": (("execution", "dense"), ("scope", "global"), ("sparsity", 0.95))},
        {"target": "other"},
        {"threads": 2},
        {"batch": 8},
        {"finetune_steps": 6},
    ],
    ids=lambda change: next(iter(change)),
)
def test_id_changes_with_any_parameter(change: dict) -> None:
    changed = dataclasses.replace(BASE, **change)
    assert changed.id != BASE.id
    assert dataclasses.replace(BASE).id == BASE.id


def test_finetune_steps_zero_without_dataset_and_for_none() -> None:
    cells = expand(_config(layers={"models": []}))
    for cell in cells:
        if cell.model == "resnet18" or cell.compressor == "none":
            assert cell.finetune_steps == 0, cell
        else:
            assert cell.finetune_steps == 9, cell


def test_variant_and_label() -> None:
    assert BASE.variant == "prune.unstructured execution=dense scope=global sparsity=0.9"
    assert BASE.label == "digits_cnn | prune.unstructured execution=dense scope=global sparsity=0.9 | cpu t=1 b=1"
    assert dataclasses.replace(BASE, kind="layers").variant.startswith("layers ")
