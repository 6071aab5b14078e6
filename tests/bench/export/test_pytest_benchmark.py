"""The pytest-benchmark export, read back by pytest-benchmark's own code: its statistics, its file loader, its
`compare` command, and the layout its pytest plugin writes."""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_benchmark.logger import Logger
from pytest_benchmark.stats import Stats
from pytest_benchmark.storage.file import FileStorage

from bench.export.pytest_benchmark import benchmark_name, sample_stats
from bench.records import Record
from bench.store.database import open_store
from tests.bench.conftest import run_main
from tests.bench.record_factory import layers_record, model_record, timing

HOST = {"hostname": "h", "arch": "x86_64", "os": "Linux-6-x86_64", "python": "3.11.7", "cpu_count_logical": 2}
CONFIG = {"timing": {"warmup_s": 0.3, "block_min_s": 0.01, "budget_s": 6.0, "min_rounds": 6, "max_rounds": 400}}


def pytest_benchmark_stats(data: list[float]) -> dict[str, Any]:
    stats = Stats()
    for value in data:
        stats.update(value)
    return stats.as_dict()


@pytest.mark.parametrize("rounds", range(1, 14))
def test_stats_are_pytest_benchmarks_for_every_quartile_method(rounds: int) -> None:
    rng = random.Random(rounds)
    data = [rng.lognormvariate(-7, 0.3) for _ in range(rounds)]
    assert sample_stats(data) == pytest_benchmark_stats(data)


@given(st.lists(st.floats(min_value=1e-7, max_value=10.0), min_size=1, max_size=60))
def test_stats_are_pytest_benchmarks_on_any_samples(data: list[float]) -> None:
    # Ties and outliers included: the fences and the bisections must pick the same data.
    assert sample_stats(data) == pytest_benchmark_stats(data)


def test_stats_of_no_samples_are_refused() -> None:
    with pytest.raises(ValueError, match="no samples"):
        sample_stats([])


def samples_timing(speedup: float, median_s: float, rounds: int, seed: int) -> Any:
    rng = random.Random(seed)
    samples = tuple(median_s * rng.uniform(0.97, 1.05) for _ in range(rounds))
    return dataclasses.replace(
        timing(speedup, 0.95 * speedup, 1.05 * speedup, median_s),
        samples_s=samples,
        iters_per_block={"baseline": 7, "candidate": 9},
    )


def run_records(slower: float = 1.0) -> list[Record]:
    """Four timed cells (one of them of a model trained with recovery), one failed, one skipped, one layer sweep."""
    return [
        model_record(model="resnet18", timing=samples_timing(1.0, 0.044 * slower, 9, 1)),
        model_record(
            "prune.channel",
            {"macs_removed": 0.5},
            model="resnet18",
            theoretical=2.0,
            speedup=1.6,
            timing=samples_timing(1.6, 0.027 * slower, 12, 2),
        ),
        model_record(
            "prune.unstructured",
            {"sparsity": 1.0 - 1e-9},
            model="resnet18",
            theoretical=float("inf"),
            timing=samples_timing(1.0, 0.044 * slower, 7, 3),
        ),
        model_record(
            "quant.bits",
            {"bits": 4},
            model="mnist_cnn",
            top1=0.98,
            finetune_steps=200,
            timing=dataclasses.replace(samples_timing(1.0, 1e-4 * slower, 30, 4), busy=True),
        ),
        model_record("quant.int8", model="resnet18", status="failed"),
        model_record("prune.channel", {"macs_removed": 0.9}, model="shufflenet", status="skipped", error="cannot"),
        layers_record("cpu", {"sparsity": 0.9}, [0.5, 1.2]),
    ]


def write_run(store_path: Path, run_id: str, records: list[Record], commit: dict[str, Any]) -> None:
    with open_store(store_path) as store:
        store.start_run(run_id, CONFIG, [], HOST, commit)
        for record in records:
            store.add_record(run_id, record)
        store.finish_run(run_id, "ok")


@pytest.fixture
def exports(tmp_path: Path) -> tuple[Path, Path, str]:
    """Two runs of one store exported as pytest-benchmark files (the second 20% slower), and the first's stderr."""
    store = tmp_path / "bench.sqlite"
    write_run(store, "r1", run_records(), {"commit": "a" * 40, "dirty": False})
    write_run(store, "r2", run_records(slower=1.2), {"commit": "b" * 40, "dirty": True})
    files = []
    first_err = ""
    for run_id in ("r1", "r2"):
        output = tmp_path / f"{run_id}.json"
        args = ["export", run_id, "--format", "pytest-benchmark", "--store", str(store), "--output", str(output)]
        done = run_main(args)
        assert done.code == 0 and done.out == "", done.err
        first_err = first_err or done.err
        files.append(output)
    return files[0], files[1], first_err


def test_export_holds_one_benchmark_per_timed_cell_and_notes_the_rest(exports: tuple[Path, Path, str]) -> None:
    first, _, err = exports
    assert "note: 3 of 7 cells left out of the pytest-benchmark export" in err
    document = json.loads(first.read_text())
    names = [bench["name"] for bench in document["benchmarks"]]
    assert names == [
        "resnet18[none|cpu t=1 b=1]",
        "resnet18[prune.channel macs_removed=0.5|cpu t=1 b=1]",
        "resnet18[prune.unstructured sparsity=0.999999999|cpu t=1 b=1]",
        "mnist_cnn[quant.bits bits=4 steps=200|cpu t=1 b=1]",
    ]
    assert len({bench["fullname"] for bench in document["benchmarks"]}) == 4
    records = run_records()
    channel = document["benchmarks"][1]
    assert channel["group"] == "resnet18 cpu t=1 b=1"
    assert channel["params"] == {
        "macs_removed": 0.5,
        "model": "resnet18",
        "compressor": "prune.channel",
        "target": "cpu",
        "threads": 1,
        "batch": 1,
    }
    assert channel["extra_info"]["speedup_median"] == 1.6
    assert channel["extra_info"]["speedup_ci_low"] == pytest.approx(1.52)
    assert channel["extra_info"]["cell_id"] == records[1].cell_id and channel["extra_info"]["run_id"] == "r1"
    assert channel["extra_info"]["bytes"] == {"dense": 4000, "gzip": 3600, "csr": 8000}
    assert channel["extra_info"]["theoretical_speedup"] == 2.0
    assert channel["options"]["min_time"] == 0.01 and channel["options"]["max_time"] == 6.0
    assert channel["stats"]["data"] == list(records[1].timing.samples_s)  # type: ignore[union-attr]
    assert channel["stats"]["iterations"] == 9
    # Infinity is not JSON: the theoretical speedup of a model with no MACs left is null.
    assert document["benchmarks"][2]["extra_info"]["theoretical_speedup"] is None
    mnist = document["benchmarks"][3]["extra_info"]
    assert mnist["top1"] == 0.98 and mnist["flags"] == ["busy"]
    assert document["commit_info"]["id"] == "a" * 40 and document["commit_info"]["dirty"] is False
    assert document["machine_info"]["node"] == "h" and document["machine_info"]["cpu"]["brand_raw"] == "Test CPU"
    assert document["datetime"] and document["version"]


def test_pytest_benchmarks_loader_reads_the_export_with_the_same_statistics(exports: tuple[Path, Path, str]) -> None:
    first, second, _ = exports
    storage = FileStorage(first.parent / "storage", logger=Logger(Logger.QUIET))
    loaded = list(storage.load(str(first), str(second)))
    assert [path.name for path, _ in loaded] == ["r1.json", "r2.json"]
    for _, data in loaded:
        assert len(data["benchmarks"]) == 4
        for bench in data["benchmarks"]:
            stats = dict(bench["stats"])
            data_s = stats.pop("data")
            assert stats.pop("iterations") >= 1
            assert stats == pytest_benchmark_stats(data_s)
            # What github-action-benchmark's "pytest" tool reads of each benchmark.
            assert isinstance(bench["fullname"], str) and stats["ops"] > 0 and stats["rounds"] == len(data_s)
            assert stats["mean"] > 0 and stats["stddev"] >= 0


def test_pytest_benchmark_compare_lists_both_exports(exports: tuple[Path, Path, str], tmp_path: Path) -> None:
    first, second, _ = exports
    # The console script pip installed beside this interpreter: the command a CI job runs.
    command = [str(Path(sys.executable).parent / "pytest-benchmark"), "compare", str(first), str(second)]
    done = subprocess.run(
        [*command, "--columns=median,iqr,ops,rounds"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    for name in ("resnet18[none|cpu t=1 b=1]", "mnist_cnn[quant.bits bits=4 steps=200|cpu t=1 b=1]"):
        assert done.stdout.count(name) == 2, done.stdout
    assert "benchmark 'resnet18 cpu t=1 b=1': 6 tests" in done.stdout


REAL_BENCHMARK = """
def test_sum(benchmark):
    assert benchmark(sum, range(100)) == 4950
"""


def test_the_layout_is_the_one_pytest_benchmark_writes(exports: tuple[Path, Path, str], tmp_path: Path) -> None:
    """Every key the plugin writes for a benchmark and its stats is there, under the same names."""
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    (real_dir / "test_real.py").write_text(REAL_BENCHMARK)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-json=real.json",
         "--benchmark-max-time=0.01", "--benchmark-min-rounds=3", "test_real.py"],
        cwd=real_dir, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    real = json.loads((real_dir / "real.json").read_text())
    ours = json.loads(exports[0].read_text())
    assert set(ours) == set(real)
    assert set(ours["commit_info"]) == set(real["commit_info"])
    assert {"node", "processor", "machine", "python_version", "cpu"} <= set(ours["machine_info"])
    for bench in ours["benchmarks"]:
        assert set(bench) == set(real["benchmarks"][0])
        assert set(bench["stats"]) == set(real["benchmarks"][0]["stats"])
        assert set(bench["options"]) >= {"min_rounds", "min_time", "max_time", "warmup", "timer"}
    assert ours["version"].split(".")[0] == real["version"].split(".")[0]


def test_names_that_print_alike_are_told_apart_by_cell_id(tmp_path: Path) -> None:
    store = tmp_path / "bench.sqlite"
    alike = [model_record("prune.unstructured", {"sparsity": value}) for value in (0.5, "0.5")]
    assert benchmark_name(alike[0]) == benchmark_name(alike[1])
    write_run(store, "r1", alike, {"commit": None, "dirty": None})
    done = run_main(["export", "--format", "pytest-benchmark", "--store", str(store)])
    assert done.code == 0 and done.err == ""
    document = json.loads(done.out)
    fullnames = [bench["fullname"] for bench in document["benchmarks"]]
    assert fullnames == [f"model::m[prune.unstructured sparsity=0.5|cpu t=1 b=1] #{r.cell_id}" for r in alike]
    assert document["commit_info"]["id"] == "unversioned" and document["commit_info"]["dirty"] is None


def test_a_run_without_a_timed_cell_is_refused_in_one_line(tmp_path: Path) -> None:
    store = tmp_path / "bench.sqlite"
    write_run(store, "r1", [model_record(status="failed"), layers_record("cpu", {"sparsity": 0.9}, [1.0, 1.0])], {})
    output = tmp_path / "out.json"
    done = run_main(["export", "--format", "pytest-benchmark", "--store", str(store), "--output", str(output)])
    assert done.code == 2
    assert done.err.strip().splitlines() == [
        "error: run r1 has no ok cell with a timing to export as pytest-benchmark (2 cells: failed, skipped or layer"
        " sweeps); export it as json or csv"
    ]
    assert not output.exists()
