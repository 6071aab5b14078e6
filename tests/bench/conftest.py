"""Shared helpers of the bench tests: tiny timing settings, the CLI in-process and as a user runs it, and one
tiny matrix run shared by the tests that only read its results."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from bench.cli.main import main

REPO = Path(__file__).resolve().parents[2]

# Timing knobs small enough that a digits_cnn cell is timed in a fraction of a second.
FAST_TIMING = """
# One engine: the fast tests time TorchScript; the ONNX Runtime cells have tests of their own.
engines = ["torchscript"]

[timing]
warmup_s = 0.02
block_min_s = 0.002
min_rounds = 3
max_rounds = 8

[layers]
budget_s = 0.1
"""

TINY_COMPRESSORS = ["none", "prune.unstructured:sparsity=0.9:execution=dense,csr", "prune.channel:macs_removed=0.5"]


def write_fast_toml(directory: Path, extra: str = "") -> Path:
    path = directory / "fast.toml"
    path.write_text(FAST_TIMING + extra)
    return path


def tiny_run_args(store: Path, config: Path, *extra: str, compressors: Sequence[str] = TINY_COMPRESSORS) -> list[str]:
    return [
        "run", "--config", str(config), "--models", "digits_cnn", "--compressors", *compressors,
        "--budget", "0.2", "--finetune-steps", "5", "--no-layers", "--store", str(store), *extra,
    ]  # fmt: skip


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_main(argv: Sequence[str]) -> CliResult:
    """`bench.cli.main.main` in this process, with stdout/stderr captured and the SIGTERM handler restored."""
    previous = signal.getsignal(signal.SIGTERM)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
    finally:
        signal.signal(signal.SIGTERM, previous)
    return CliResult(code, out.getvalue(), err.getvalue())


def bench_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench", *args]


# The machine is shared: with torch's default two intra-op threads, training digits_cnn slows from ~1.5 s to
# minutes while another process holds a core (the threads wait for each other). One thread in the suite's own
# process keeps tests fast; the timing worker sets its thread count per request, so latency is unaffected.
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run_subprocess(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`python -m bench ARGS` as a user runs it."""
    return subprocess.run(
        bench_command(*args), cwd=REPO, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=timeout
    )


def _interruptible() -> None:
    # A script's background job inherits SIGINT ignored, and Python keeps it so: give the child Ctrl-C as a
    # terminal would, whatever started the tests.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_subprocess(*args: str) -> subprocess.Popen[str]:
    """`python -m bench ARGS` in the background, stdout and stderr piped, interruptible by SIGINT."""
    return subprocess.Popen(
        bench_command(*args), cwd=REPO, env=SUBPROCESS_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_interruptible,
    )  # fmt: skip


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def count_records(store: Path) -> int:
    """Records in the store, read through a separate read-only connection (the writer may be running)."""
    if not store.exists():
        return 0
    connection = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
    try:
        return int(connection.execute("SELECT COUNT(*) FROM records").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        connection.close()


def stop(process: subprocess.Popen[str]) -> None:
    """Kill a process this test started, if it is still running."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@dataclass
class TinyRun:
    """The tiny digits_cnn matrix, run once per session through `bench.cli.main.main`."""

    store: Path
    config: Path
    result: CliResult
    run_id: str

    def copy_store(self, directory: Path) -> Path:
        """A private copy of the store (with its cache of trained models) for tests that write to it."""
        target = directory / "copy"
        shutil.copytree(self.store.parent, target)
        return target / self.store.name


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    directory = tmp_path_factory.mktemp("tiny")
    config = write_fast_toml(directory)
    store = directory / "results" / "bench.sqlite"
    result = run_main(tiny_run_args(store, config))
    assert result.code == 0, result.err
    from bench.store.database import read_store

    with read_store(store) as opened:
        run_id = opened.run().run_id
    return TinyRun(store, config, result, run_id)
