"""A compressor that fits some of a run's models: measured on those, skipped with the reason on the others;
one that fits none of them is a wrong matrix, refused before the run."""

from __future__ import annotations

from pathlib import Path

import pytest

import compressors
from bench.config.run_config import load_config
from bench.errors import BenchError
from bench.models.references import References
from bench.run.baselines import Baselines
from bench.run.matrix import expand
from bench.run.prepare import Preparation
from targets import CpuTarget
from tests.bench.conftest import write_fast_toml

BN_GAMMA = {"prune.channel": {"macs_removed": 0.5, "criterion": "bn_gamma"}}


def _config(tmp_path: Path, models: list[str]):
    table = {"models": models, "compressors": BN_GAMMA, "finetune_steps": 0, "store": tmp_path / "bench.sqlite"}
    return load_config(write_fast_toml(tmp_path), {**table, "layers": {"models": []}})


def test_a_compressor_that_fits_no_model_of_the_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="prune.channel on digits_cnn: criterion bn_gamma .* no BatchNorm layer"):
        _config(tmp_path, ["digits_cnn"])


def test_on_a_model_it_does_not_fit_the_cell_is_a_known_limit(tmp_path: Path) -> None:
    config = _config(tmp_path, ["digits_cnn", "resnet18"])  # resnet18 has BatchNorm: the matrix is valid
    (cell,) = [c for c in expand(config) if c.model == "digits_cnn"]
    baselines = Baselines(References(config.cache_dir, config.assets, lambda text: None), tmp_path / "baselines")
    with CpuTarget() as target, pytest.raises(compressors.CompressorLimit) as limit:
        Preparation(baselines, tmp_path).timed(cell, target.machine_info(), target.device)
    assert limit.value.action == "apply to" and "no BatchNorm layer" in limit.value.reason
