"""CUDA targets in the matrix: the extra 2:4 layer cell, int8 cells skipped on a GPU, and a run without a GPU."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from bench.config.run_config import load_config
from bench.models.references import References
from bench.report.write import write_report
from bench.run.baselines import Baselines
from bench.run.cells import TimedArtifacts, measure_model_cell
from bench.run.matrix import SEMI_STRUCTURED, expand
from bench.run.prepare import Preparation
from bench.run.runner import run_matrix
from bench.store.database import read_store
from targets import CudaTarget
from tests.bench.conftest import write_fast_toml

SEMI_STRUCTURED_PARAMS = (("pattern", SEMI_STRUCTURED), ("sparsity", 0.5))


def _config(tmp_path: Path, targets: list[str], **overrides):
    """A digits_cnn matrix whose config file also defines ``gpu2``, a second target of kind cuda."""
    config_file = write_fast_toml(tmp_path)
    config_file.write_text(config_file.read_text() + '\n[targets.gpu2]\nkind = "cuda"\n')
    table = {
        "models": ["digits_cnn"],
        "compressors": {"none": {}},
        "targets": targets,
        "finetune_steps": 0,
        "store": tmp_path / "bench.sqlite",
    }
    return load_config(config_file, {**table, **overrides})


def test_expand_adds_one_2_4_layer_cell_per_cuda_kind_target(tmp_path: Path) -> None:
    config = _config(
        tmp_path, ["cpu", "cuda", "gpu2"], threads=[1, 2], layers={"models": ["digits_cnn"], "sparsities": [0.5, 0.9]}
    )
    layers = [c for c in expand(config) if c.kind == "layers"]
    semi = [c for c in layers if c.params == SEMI_STRUCTURED_PARAMS]
    assert sorted((c.target, c.threads) for c in semi) == [("cuda", 1), ("cuda", 2), ("gpu2", 1), ("gpu2", 2)]
    csr = [c for c in layers if c not in semi]
    assert len(csr) == 2 * 3 * 2  # sparsities x targets x threads, the CPU included
    assert all(dict(c.params) == {"sparsity": dict(c.params)["sparsity"]} for c in csr)
    assert len({c.id for c in layers}) == len(layers)
    assert semi[0].variant == "layers prune.unstructured pattern=2:4 sparsity=0.5"


def test_expand_adds_no_2_4_cell_without_a_cuda_target_or_a_layer_sweep(tmp_path: Path) -> None:
    on_cpu = _config(tmp_path, ["cpu"], layers={"models": ["digits_cnn"]})
    assert not [c for c in expand(on_cpu) if c.params == SEMI_STRUCTURED_PARAMS]
    no_layers = _config(tmp_path, ["cuda"], layers={"models": []})
    assert all(c.kind == "model" for c in expand(no_layers))


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> Baselines:
    """digits_cnn trained once for the int8 cells (a second or two)."""
    directory = tmp_path_factory.mktemp("references")
    return Baselines(References(directory / "cache"), directory / "artifacts")


@pytest.fixture(scope="module")
def cuda_target() -> Iterator[CudaTarget]:
    # The worker's `info` answers without a GPU too, so a cell gets as far as the int8 check on any machine.
    with CudaTarget() as target:
        yield target


@pytest.mark.parametrize("compressor", ["quant.int8", "quant.int8_dynamic"])
def test_int8_cell_on_a_cuda_target_is_skipped_with_the_reason(
    tmp_path: Path, compressor: str, references: Baselines, cuda_target: CudaTarget
) -> None:
    config = _config(tmp_path, ["cuda"], compressors={compressor: {}}, layers={"models": []})
    (cell,) = expand(config)
    prepared = Preparation(references, tmp_path).timed(cell, cuda_target.machine_info(), cuda_target.device)
    fields = measure_model_cell(cell, prepared, cuda_target, config.timing, TimedArtifacts())
    assert fields["status"] == "skipped"
    assert fields["error"].startswith("int8 (torch.ao, ") and fields["error"].endswith(
        "engine) has no CUDA kernels; measured on CPU targets"
    )
    assert "timing" not in fields


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a run on a machine without a CUDA device")
def test_run_on_cuda_without_a_gpu_skips_every_cell_with_the_reason(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        ["cuda"],
        compressors={"none": {}, "quant.int8": {}},
        layers={"models": ["digits_cnn"], "sparsities": [0.9]},
    )
    cells = expand(config)
    assert {(c.kind, c.params) for c in cells if c.kind == "layers"} == {
        ("layers", (("sparsity", 0.9),)),
        ("layers", SEMI_STRUCTURED_PARAMS),
    }
    outcome = run_matrix(config, io.StringIO())
    assert outcome.counts == {"skipped": len(cells)}
    with read_store(config.store) as store:
        records = store.records(outcome.run_id)
        path = write_report(store.run(outcome.run_id), records, tmp_path / "report", io.StringIO()).md
    reason = "target 'cuda' unavailable: no CUDA device visible to torch"
    assert len(records) == len(cells) and path is not None
    assert all(
        r.status == "skipped" and r.error and r.error.startswith(reason) and "\n" not in r.error for r in records
    )
    assert reason in path.read_text()
