"""Sharding a matrix: every runner computes the same split, which covers the matrix once and keeps candidates whole."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench.config.run_config import load_config
from bench.config.shards import MAX_SHARDS, Shard, parse_shard
from bench.errors import BenchError
from bench.run.matrix import Cell, expand
from bench.run.plan import training_key
from bench.run.shards import assign, matrix_digest, shard_cells, shard_json
from bench.store.database import read_store
from tests.bench.conftest import TinyRun, run_main, tiny_run_args


@pytest.fixture(scope="module")
def default_matrix() -> list[Cell]:
    return expand(load_config(None, {}))


def _candidate_key(cell: Cell) -> tuple[object, ...]:
    """What identifies a prepared candidate (before device resolution)."""
    return (cell.model, cell.batch, cell.finetune_steps, cell.recovery, cell.assets, cell.compressor, cell.params)


def _two_target_matrix() -> list[Cell]:
    """Cells on two targets and two thread counts: each candidate is shared by four cells."""
    cells = []
    for model in ("a", "b", "c"):
        for sparsity in (0.5, 0.9):
            for execution in ("dense", "csr"):
                params = (("execution", execution), ("scope", "layer"), ("sparsity", sparsity))
                for target in ("cpu", "pi"):
                    for threads in (1, 2):
                        cells.append(Cell("model", model, "prune.unstructured", params, target, threads, 1, 5))
    return cells


@pytest.mark.parametrize("text", ["1/1", "1/3", "3/3", " 2/4 "])
def test_parse_accepts_k_of_n(text: str) -> None:
    index, count = (int(part) for part in text.split("/"))
    assert parse_shard(text) == Shard(index, count)


@pytest.mark.parametrize("text", ["0/3", "4/3", "a/b", "3", "", "1/0", "-1/3", "1/2/3", "1.0/2", "1 /2"])
def test_parse_refuses_anything_else_naming_the_value(text: str) -> None:
    with pytest.raises(BenchError) as error:
        parse_shard(text)
    assert str(error.value) == f"--shard expects K/N with 1 <= K <= N, got '{text}'"


def test_parse_refuses_more_shards_than_the_cap() -> None:
    with pytest.raises(BenchError, match="at most"):
        parse_shard(f"1/{MAX_SHARDS + 1}")
    assert parse_shard(f"{MAX_SHARDS}/{MAX_SHARDS}").count == MAX_SHARDS


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 100])
def test_shards_partition_the_matrix(default_matrix: list[Cell], count: int) -> None:
    shards = [shard_cells(default_matrix, Shard(index, count)) for index in range(1, count + 1)]
    ids = [cell.id for shard in shards for cell in shard]
    assert len(ids) == len(set(ids)) == len(default_matrix)
    assert set(ids) == {cell.id for cell in default_matrix}
    for shard in shards:  # each keeps the matrix's order
        assert shard == [cell for cell in default_matrix if cell in shard]


@pytest.mark.parametrize("count", [2, 3, 4])
def test_default_matrix_shards_are_balanced(default_matrix: list[Cell], count: int) -> None:
    sizes = [len(part) for part in assign(default_matrix, count)]
    keys = [training_key(cell) for cell in default_matrix]
    largest_group = max(keys.count(key) for key in keys)
    assert largest_group == 4  # dense and CSR of one sparsity, on two engines
    assert max(sizes) - min(sizes) <= largest_group
    assert min(sizes) >= len(default_matrix) // count - largest_group


@pytest.mark.parametrize("count", [2, 3, 5])
def test_candidates_and_their_execution_siblings_are_never_split(count: int) -> None:
    cells = _two_target_matrix()
    shards = assign(cells, count)
    where = {cell.id: index for index, shard in enumerate(shards) for cell in shard}
    for cell in cells:
        for other in cells:
            if _candidate_key(cell) == _candidate_key(other) or training_key(cell) == training_key(other):
                assert where[cell.id] == where[other.id], (cell.label, other.label)
    # dense and CSR of one sparsity share fine-tuned weights: 3 models x 2 sparsities = 6 groups of 8 cells
    expected = [8 * (6 // count + (index < 6 % count)) for index in range(count)]
    assert sorted(len(shard) for shard in shards) == sorted(expected)


def test_layer_cells_have_groups_of_their_own(default_matrix: list[Cell]) -> None:
    layers = [cell for cell in default_matrix if cell.kind == "layers"]
    assert layers and len({training_key(cell) for cell in layers}) == len(layers)
    assert not {training_key(cell) for cell in layers} & {training_key(c) for c in default_matrix if c.kind == "model"}


def test_split_is_repeatable_and_independent_of_cell_order(default_matrix: list[Cell]) -> None:
    shuffled = list(default_matrix)
    random.Random(7).shuffle(shuffled)
    for count in (2, 3, 4):
        first = [{c.id for c in part} for part in assign(default_matrix, count)]
        assert first == [{c.id for c in part} for part in assign(default_matrix, count)]
        assert first == [{c.id for c in part} for part in assign(shuffled, count)]
    assert matrix_digest(shuffled) == matrix_digest(default_matrix)


def test_more_shards_than_groups_leaves_some_empty() -> None:
    cells = _two_target_matrix()
    shards = assign(cells, 10)
    assert [len(s) for s in shards] == [8] * 6 + [0] * 4


def test_shard_json_names_the_matrix_and_every_shards_size(default_matrix: list[Cell]) -> None:
    description = shard_json(default_matrix, Shard(2, 3))
    assert description["index"] == 2 and description["count"] == 3
    assert description["matrix"] == matrix_digest(default_matrix)
    assert sum(description["sizes"]) == len(default_matrix)
    assert description["sizes"][1] == len(shard_cells(default_matrix, Shard(2, 3)))
    assert matrix_digest(default_matrix[:-1]) != description["matrix"]


@pytest.mark.parametrize("text", ["0/3", "4/3", "a/b", "3"])
def test_cli_refuses_a_bad_shard_in_one_line_storing_nothing(tmp_path: Path, text: str) -> None:
    store = tmp_path / "s.sqlite"
    result = run_main(["run", "--models", "digits_cnn", "--shard", text, "--store", str(store)])
    assert result.code == 2
    assert result.err == f"error: --shard expects K/N with 1 <= K <= N, got '{text}'\n"
    assert not store.exists() and list(tmp_path.iterdir()) == []


def test_empty_shard_runs_nothing_and_stores_nothing(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    # digits_cnn with one compressor and no layer sweep is one cell: shard 2 of 2 has none.
    result = run_main(
        [
            "run",
            "--models",
            "digits_cnn",
            "--compressors",
            "none",
            "--no-layers",
            "--engines",
            "torchscript",
            "--shard",
            "2/2",
            "--store",
            str(store),
        ]
    )
    assert result.code == 0, result.err
    assert result.err.strip().splitlines() == [
        "shard 2/2: none of the matrix's 1 cells falls to this shard; nothing to run"
    ]
    assert result.out == "" and not store.exists()


def test_config_carries_the_shard_from_text_or_value() -> None:
    assert load_config(None, {"shard": "2/3"}).shard == Shard(2, 3)
    assert load_config(None, {"shard": Shard(1, 2)}).shard == Shard(1, 2)
    assert load_config(None, {}).shard is None


def test_shard_runs_store_their_share_and_count_only_it(tmp_path: Path, tiny_run: TinyRun) -> None:
    store = tiny_run.copy_store(tmp_path)
    with read_store(store) as opened:
        whole = {record.cell_id for record in opened.records(tiny_run.run_id)}
        config = {**opened.run(tiny_run.run_id).config, "store": str(store)}
    seen: list[set[str]] = []
    for index in (1, 2):
        result = run_main(tiny_run_args(store, tiny_run.config, "--shard", f"{index}/2"))
        assert result.code == 0, result.err
        with read_store(store) as opened:
            run = opened.run()
            ids = {record.cell_id for record in opened.records(run.run_id)}
        shard = run.config["shard"]
        assert (shard["index"], shard["count"], sum(shard["sizes"])) == (index, 2, len(whole))
        assert len(ids) == shard["sizes"][index - 1] > 0
        progress = [line for line in result.err.splitlines() if line.startswith("[")]
        assert len(progress) == len(ids) and all(f"/{len(ids)}]" in line for line in progress)
        assert {key: value for key, value in run.config.items() if key != "shard"} == config
        seen.append(ids)
    assert seen[0] | seen[1] == whole and not seen[0] & seen[1]
