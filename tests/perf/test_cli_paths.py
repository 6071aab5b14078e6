"""pytest-benchmark benchmarks of what a user waits for at the command line, with nothing to compute.

`list runs` in a fresh interpreter: reading the store must not pay for `import torch` (seconds). A re-run of a
finished matrix: every cell is ok or skipped by an engine limit (CSR has no ONNX export), so the runner reuses
each stored record and compresses, exports and times nothing. Marked `perf` like `test_hot_paths`, and each one
checks what it timed did the right thing.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bench.config.run_config import RunConfig, load_config
from bench.run.runner import RunOutcome, run_matrix
from tests.bench.conftest import REPO, SUBPROCESS_ENV, bench_command, write_fast_toml
from tests.perf.test_hot_paths import stored_records, write_store

pytestmark = pytest.mark.perf


def test_list_runs_in_a_fresh_interpreter(benchmark: Any, tmp_path: Path) -> None:
    store = write_store(tmp_path / "bench.sqlite", stored_records(100))
    command = bench_command("list", "runs", "--store", str(store))

    def list_runs() -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, cwd=REPO, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=60)

    done = benchmark.pedantic(list_runs, rounds=5)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("r1 ")


@pytest.fixture(scope="module")
def finished_matrix(tmp_path_factory: pytest.TempPathFactory) -> RunConfig:
    """A tiny matrix measured once: digits_cnn, uncompressed and CSR-pruned, on TorchScript and ONNX Runtime."""
    folder = tmp_path_factory.mktemp("rerun")
    config = load_config(
        write_fast_toml(folder),
        {
            "models": ["digits_cnn"],
            "compressors": {"none": {}, "prune.unstructured": {"sparsity": 0.9, "execution": "csr"}},
            "engines": ["torchscript", "onnxruntime"],
            "finetune_steps": 5,
            "timing": {"budget_s": 0.2},
            "layers": {"models": []},
            "store": folder / "bench.sqlite",
        },
    )
    assert run_matrix(config, io.StringIO()).counts == {"ok": 3, "skipped": 1}
    return config


def test_rerun_of_a_finished_matrix(benchmark: Any, finished_matrix: RunConfig) -> None:
    def rerun() -> RunOutcome:
        return run_matrix(finished_matrix, io.StringIO())

    outcome = benchmark.pedantic(rerun, rounds=3)
    assert outcome.counts == {"reused": 4}
