"""No cell can take down the run: a cell whose host work allocates without bound, hangs, or crashes natively ends
alone, `failed` with one line that names the limit, and the cells around it are measured.

Each real run measures digits_cnn with three compressors in plan order: no compression, a misbehaving test
compressor (registered as a user's plugin would be, into a copy of the registry), and 90% unstructured pruning.
"""

from __future__ import annotations

import copy
import os
import shutil
import signal
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch

from bench.config.run_config import RunConfig, load_config
from bench.run.runner import run_matrix
from bench.store.database import read_store
from compressors import Compressed, CompressorConfig, Presentation, register, registry
from tests.bench.conftest import run_main, write_fast_toml

if TYPE_CHECKING:
    from torch import nn

MEMORY_GB = 1.0
TIMEOUT_S = 8.0
# Where the hog stops growing if the run's watch failed: past the limit by far, short of this machine's memory.
HOG_CAP_BYTES = 6 * 2**30


@dataclass(frozen=True)
class Misbehaving(CompressorConfig):
    """A compressor whose `apply` does one thing a third-party library can do to the process it runs in:
    ``hog`` allocates until it is stopped, ``hang`` sleeps for an hour, ``crash`` kills its process with SIGSEGV."""

    presentation = Presentation(short="bad", family="misbehaving", headline=("how",))

    how: str = "hog"

    def apply(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor] = ()
    ) -> Compressed:
        if self.how == "hog":
            blocks = []
            while sum(block.numel() for block in blocks) * 4 < HOG_CAP_BYTES:
                blocks.append(torch.ones(16 * 2**20))  # 64 MiB, touched
            time.sleep(3600)
        elif self.how == "hang":
            time.sleep(3600)
        elif self.how == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        return Compressed(model=copy.deepcopy(model), masks={}, info={})


@pytest.fixture(scope="module")
def trained_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """digits_cnn trained once for the module, so no run spends its time limit on training the reference."""
    folder = tmp_path_factory.mktemp("trained")
    outcome = run_matrix(_config(folder, {"none": {}}, limits={}), _Quiet())
    assert outcome.counts == {"ok": 1}
    return folder / "cache"


class _Quiet:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


@pytest.fixture
def misbehaving(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register("test.misbehaving")(Misbehaving)
    yield


@pytest.fixture
def own_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A temporary folder of the test's own, for the run's scratch files: what is left there, the run left."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _config(folder: Path, compressors: dict[str, Any], limits: dict[str, float]) -> RunConfig:
    return load_config(
        write_fast_toml(folder),
        {
            "models": ["digits_cnn"],
            "compressors": compressors,
            "engines": ["torchscript"],
            "finetune_steps": 0,
            "timing": {"budget_s": 0.2},
            "layers": {"models": []},
            "limits": limits,
            "store": folder / "bench.sqlite",
        },
    )


LIMITS = {"cell_memory_gb": MEMORY_GB, "cell_timeout_s": TIMEOUT_S}
EXPECTED = {
    "hog": (f"test.misbehaving on digits_cnn used more than {MEMORY_GB:g} GB of memory while compressing the model;"
            f" stopped at the --cell-memory limit ({MEMORY_GB:g} GB): raise it"),
    "hang": (f"test.misbehaving on digits_cnn took more than {TIMEOUT_S:g} s while compressing the model; stopped"
             f" at the --cell-timeout limit ({TIMEOUT_S:g} s): raise it"),
    "crash": ("test.misbehaving on digits_cnn: the host process was killed by SIGSEGV (signal 11) while compressing"
              " the model (native code crashed)"),
}  # fmt: skip
# What the host process's log holds about where it was: its Python stack, asked for before a kill at a limit, or
# written by the crash handler.
STACK = {"hog": "in apply", "hang": "in apply", "crash": "Fatal Python error: Segmentation fault"}


@pytest.mark.parametrize("how", ["hog", "hang", "crash"])
def test_a_misbehaving_cell_fails_alone_with_its_limit_and_the_run_goes_on(
    how: str, misbehaving: None, own_tmp: Path, trained_cache: Path, tmp_path: Path
) -> None:
    shutil.copytree(trained_cache, tmp_path / "cache")
    compressors = {"none": {}, "test.misbehaving": {"how": how}, "prune.unstructured": {"sparsity": 0.9}}
    config = _config(tmp_path, compressors, LIMITS)
    output = _Lines()
    started = time.monotonic()
    outcome = run_matrix(config, output)
    took = time.monotonic() - started

    assert outcome.counts == {"ok": 2, "failed": 1}
    with read_store(config.store) as store:
        records = {record.compressor: record for record in store.records(outcome.run_id)}
    assert [records[name].status for name in compressors] == ["ok", "failed", "ok"]
    bad = records["test.misbehaving"]
    assert bad.error is not None and bad.error.startswith(EXPECTED[how]) and "\n" not in bad.error
    assert bad.traceback is not None and STACK[how] in bad.traceback
    assert any(bad.error in line for line in output.lines)  # told in the progress display as it happened
    if how == "hang":
        assert took < 3 * TIMEOUT_S + 60  # stopped at the limit, not at the hour's end
    with sqlite3.connect(config.store) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert list(own_tmp.iterdir()) == []  # the scratch folder, the host's log and the workers' logs are gone


class _Lines(_Quiet):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.lines.extend(text.splitlines())
        return len(text)


def test_the_limits_are_flags_and_a_wrong_one_is_one_line(tmp_path: Path) -> None:
    store = str(tmp_path / "bench.sqlite")
    for flags, said in [
        (["--cell-memory", "0"], "limits.cell_memory_gb must be a number of GB in (0, "),
        (["--cell-memory", "lots"], "--cell-memory expects a finite number of GB, got 'lots'"),
        (["--cell-timeout", "-1"], "limits.cell_timeout_s must be a number of seconds in (0, "),
    ]:
        result = run_main(["run", "--models", "digits_cnn", "--no-layers", "--store", store, *flags])
        assert result.code == 2
        assert result.err.startswith(f"error: {said}") and result.err.count("\n") == 1
    assert not Path(store).exists()  # nothing ran
    config = load_config(None, {"limits": {"cell_memory_gb": 2.5, "cell_timeout_s": 60}})
    assert config.limits.cell_memory_gb == 2.5 and config.to_json()["limits"]["cell_timeout_s"] == 60
