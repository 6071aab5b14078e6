"""Candidates: what the host measures of a compressed model is made once for all the targets that time it."""

from __future__ import annotations

from pathlib import Path

import pytest

import compressors
from bench.cells import Candidates
from bench.config import load_config
from bench.matrix import expand
from bench.references import References
from tests.bench.conftest import write_fast_toml


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> References:
    directory = tmp_path_factory.mktemp("references")
    return References(directory / "cache", directory / "artifacts")


def _cells(tmp_path: Path, compressor: dict):
    config_file = write_fast_toml(tmp_path, '\n[targets.pi]\nkind = "ssh"\nhost = "pi.local"\n')
    table = {
        "models": ["digits_cnn"],
        "compressors": compressor,
        "targets": ["cpu", "pi"],
        "threads": [1, 2],
        "finetune_steps": 0,
        "layers": {"models": []},
    }
    return expand(load_config(config_file, table))


def _config(cell, arch: str) -> compressors.CompressorConfig:
    return compressors.get(cell.compressor).from_dict(dict(cell.params)).for_device(arch)


def test_cells_differing_in_target_or_threads_share_one_candidate(tmp_path: Path, references: References) -> None:
    cells = _cells(tmp_path, {"prune.unstructured": {"sparsity": 0.9, "execution": "csr"}})
    assert len({(c.target, c.threads) for c in cells}) == 4
    candidates = Candidates(tmp_path / "scratch")
    first = candidates.get(cells[0], _config(cells[0], "x86_64"), references)
    assert first.artifact.is_file() and first.fields["accuracy"].top1 is not None
    for cell in cells[1:]:
        assert candidates.get(cell, _config(cell, "x86_64"), references) is first


def test_a_config_resolved_for_another_device_is_another_candidate(tmp_path: Path, references: References) -> None:
    cpu_cell, *_ = _cells(tmp_path, {"quant.int8": {}})
    candidates = Candidates(tmp_path / "scratch")
    host = candidates.get(cpu_cell, _config(cpu_cell, "x86_64"), references)
    arm = candidates.get(cpu_cell, _config(cpu_cell, "aarch64"), references)
    assert (host.quantized_engine, arm.quantized_engine) == ("x86", "qnnpack")
    # One entry: the replaced candidate's artifact is gone, the new one is there.
    assert not host.artifact.exists() and arm.artifact.is_file()
