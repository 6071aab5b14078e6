"""The plan and its preparation: each compressed model, candidate and artifact is made once per group, whatever
the order of the matrix, and every engine gets what it can run or a reason why not."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

import compressors
from bench import engines
from bench.config.run_config import load_config
from bench.engines import EngineLimit
from bench.models.references import References
from bench.run.baselines import Baselines
from bench.run.matrix import Cell, expand
from bench.run.plan import plan, training_key
from bench.run.prepare import Preparation
from tests.bench.conftest import write_fast_toml


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> Baselines:
    directory = tmp_path_factory.mktemp("references")
    return Baselines(References(directory / "cache"), directory / "artifacts")


def _cells(tmp_path: Path, compressor: dict, engine_names: list[str] | None = None) -> list[Cell]:
    config_file = write_fast_toml(tmp_path, '\n[targets.pi]\nkind = "ssh"\nhost = "pi.local"\n')
    table = {
        "models": ["digits_cnn"],
        "compressors": compressor,
        "targets": ["cpu", "pi"],
        "engines": engine_names or ["torchscript"],
        "threads": [1, 2],
        "batch": [1, 4],
        "finetune_steps": 0,
        "layers": {"models": []},
    }
    return expand(load_config(config_file, table))


def _config(cell: Cell, arch: str = "x86_64") -> compressors.CompressorConfig:
    return compressors.get(cell.compressor).from_dict(dict(cell.params)).for_device(arch)


def test_cells_differing_in_placement_share_one_compressed_model(tmp_path: Path, references: Baselines) -> None:
    cells = _cells(tmp_path, {"prune.unstructured": {"sparsity": 0.9, "execution": ["dense", "csr"]}})
    (group,) = plan(cells)
    preparation = Preparation(references, tmp_path / "scratch")
    artifacts = {cell.id: preparation.artifact(cell, _config(cell), engines.get(cell.engine)) for cell in group.cells}
    # Two candidates (dense, CSR) of one compressed model; TorchScript artifacts are per batch size.
    assert preparation.counts() == {"compressed": 1, "candidates": 2, "artifacts": 4}
    paths = {artifact.exported.path for artifact in artifacts.values()}
    assert len(paths) == 4 and all(path.is_file() for path in paths)
    by_batch = {cell.batch: artifacts[cell.id].fields["macs"].dense for cell in group.cells}
    assert by_batch[4] == 4 * by_batch[1]
    preparation.close()
    assert not any(path.exists() for path in paths)


def test_a_config_resolved_for_another_device_is_another_candidate(tmp_path: Path, references: Baselines) -> None:
    cpu_cell, *_ = _cells(tmp_path, {"quant.int8": {}})
    preparation = Preparation(references, tmp_path / "scratch")
    torchscript = engines.get("torchscript")
    host = preparation.artifact(cpu_cell, _config(cpu_cell, "x86_64"), torchscript)
    arm = preparation.artifact(cpu_cell, _config(cpu_cell, "aarch64"), torchscript)
    assert (host.exported.quantized_engine, arm.exported.quantized_engine) == ("x86", "qnnpack")
    assert host.exported.path.is_file() and arm.exported.path.is_file()
    preparation.close()


def test_the_plan_groups_by_compressed_model_whatever_the_matrix_order(tmp_path: Path) -> None:
    cells = _cells(
        tmp_path,
        {"prune.unstructured": {"sparsity": [0.5, 0.9], "execution": ["dense", "csr"]}, "none": {}},
        ["torchscript", "onnxruntime"],
    )
    shuffled = list(cells)
    random.Random(0).shuffle(shuffled)
    groups = plan(shuffled)
    assert len(groups) == 3  # none, and one per sparsity: dense and CSR share the pruned weights
    assert sorted(cell.id for group in groups for cell in group.cells) == sorted(cell.id for cell in cells)
    for group in groups:
        assert len({training_key(cell) for cell in group.cells}) == 1
        # Within a group a candidate's cells run together, and an engine's together within a candidate.
        order = [(cell.params, cell.engine) for cell in group.cells]
        runs = [key for index, key in enumerate(order) if index == 0 or order[index - 1] != key]
        assert len(runs) == len(set(runs))


def test_onnx_runtime_quantizes_int8_itself_and_evaluates_what_it_runs(tmp_path: Path, references: Baselines) -> None:
    cells = _cells(tmp_path, {"quant.int8": {}, "none": {}}, ["torchscript", "onnxruntime"])
    preparation = Preparation(references, tmp_path / "scratch")
    found = {
        (cell.compressor, cell.engine): preparation.artifact(cell, _config(cell), engines.get(cell.engine))
        for cell in cells
    }
    ort_int8, ort_fp32 = found[("quant.int8", "onnxruntime")], found[("none", "onnxruntime")]
    assert ort_int8.exported.executed_as.startswith("int8 QDQ (ONNX Runtime static quantization")
    assert ort_int8.exported.quantized_engine is None and ort_int8.exported.path.suffix == ".onnx"
    assert "8 batches of real inputs" in ort_int8.exported.notes
    # int8 weights: the QDQ file is well under half the fp32 one (scales and the graph come on top of a quarter).
    assert ort_int8.fields["sizes"].stored_bytes < 0.5 * ort_fp32.fields["sizes"].stored_bytes
    torch_int8 = found[("quant.int8", "torchscript")].fields["accuracy"].top1
    assert ort_int8.fields["accuracy"].top1 == pytest.approx(torch_int8, abs=0.03)
    assert ort_fp32.fields["accuracy"].top1 == found[("none", "torchscript")].fields["accuracy"].top1
    preparation.close()


def test_a_candidate_onnx_cannot_express_is_a_limit_of_the_engine(tmp_path: Path, references: Baselines) -> None:
    (cell, *_) = _cells(tmp_path, {"prune.unstructured": {"sparsity": 0.9, "execution": "csr"}}, ["onnxruntime"])
    preparation = Preparation(references, tmp_path / "scratch")
    with pytest.raises(EngineLimit, match="sparse CSR .* cannot be exported to ONNX") as first:
        preparation.artifact(cell, _config(cell), engines.get("onnxruntime"))
    # The candidate's other cells are skipped for the same reason without exporting again.
    with pytest.raises(EngineLimit) as again:
        preparation.artifact(cell, _config(cell), engines.get("onnxruntime"))
    assert again.value is first.value and preparation.counts()["artifacts"] == 0
    preparation.close()


def test_a_group_is_prepared_before_timing_and_a_failing_piece_fails_only_its_cells(
    tmp_path: Path, references: Baselines, monkeypatch: pytest.MonkeyPatch
) -> None:
    cells = _cells(tmp_path, {"prune.unstructured": {"sparsity": 0.9, "execution": ["dense", "csr"]}})
    (group,) = plan(cells)
    torchscript = type(engines.get("torchscript"))
    real, tries = torchscript.candidate, []

    def candidate(self: Any, source: Any, example: Any, path: Path) -> Any:
        if source.config.to_dict().get("execution") == "csr":
            tries.append(path)
            raise RuntimeError("no CSR export today")
        return real(self, source, example, path)

    monkeypatch.setattr(torchscript, "candidate", candidate)
    preparation = Preparation(references, tmp_path / "scratch")
    placed = [(cell, {"arch": "x86_64"}, "cpu") for cell in group.cells]
    preparation.prepare(placed)
    made = preparation.counts()
    assert made == {"compressed": 1, "candidates": 2, "artifacts": 2}  # dense per batch; CSR failed per batch
    for cell, machine, device in placed:
        if dict(cell.params)["execution"] == "csr":
            with pytest.raises(RuntimeError, match="no CSR export today"):
                preparation.timed(cell, machine, device)
        else:
            pair = preparation.timed(cell, machine, device).pair
            assert Path(pair["candidate"]).is_file() and Path(pair["baseline"]).is_file()
    assert len(tries) == 2 and preparation.counts() == made  # each failure tried once; timing made nothing new
    preparation.close()
