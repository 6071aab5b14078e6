"""pytest-benchmark benchmarks of the suite's own hot paths, at the sizes a large run reaches.

Marked `perf` and left out of the default run: `python -m pytest -m perf tests/perf` runs them and
`--benchmark-json=FILE` keeps their timings for a later `--benchmark-compare`. Each one also checks what it
timed produced the right thing, so with `--benchmark-disable` they run once each as plain tests.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from bench.config.run_config import load_config
from bench.measure import size_report
from bench.models.registry import resolve_model
from bench.records import Record
from bench.report.write import write_report
from bench.run.matrix import expand
from bench.store.database import Run, open_store, read_store
from tests.bench.record_factory import model_record

pytestmark = pytest.mark.perf

STORED = 10_000
REPORTED = 1_000
# 2 models x (none + 33 sparsities x 2 executions + 33 channel budgets) x 50 batch sizes = 10,000 cells.
LEVELS = [round(0.3 + 0.02 * i, 2) for i in range(33)]
BATCHES = list(range(1, 51))


def test_expand_a_10000_cell_matrix(benchmark: Any) -> None:
    config = load_config(
        None,
        {
            "models": ["digits_cnn", "mnist_cnn"],
            "compressors": {
                "none": [{}],
                "prune.unstructured": [{"sparsity": LEVELS, "execution": ["dense", "csr"]}],
                "prune.channel": [{"macs_removed": LEVELS}],
            },
            "batch": BATCHES,
            "engines": ["torchscript"],
            "layers": {"models": []},
        },
    )
    # The first expansion also fills caches (model lookups); timed from it, calibration would settle on 5 rounds.
    expand(config)
    cells = benchmark(expand, config)
    assert len(cells) == 10_000
    assert len({cell.id for cell in cells}) == 10_000


def stored_records(count: int) -> list[Record]:
    """`count` ok records of distinct cells, each with its raw samples, sizes, MACs and accuracy."""
    return [model_record("prune.unstructured", {"sparsity": i / count}, top1=0.9) for i in range(count)]


def write_store(path: Path, records: list[Record]) -> Path:
    """One run of `records` written as the runner writes them: one committed transaction per record."""
    with open_store(path) as store:
        store.start_run("r1", {"models": ["m"]}, [], {"hostname": "h"}, {"commit": None, "dirty": None})
        for record in records:
            store.add_record("r1", record)
        store.finish_run("r1", "ok")
    return path


def read_records(path: Path) -> list[Record]:
    with read_store(path) as store:
        return store.records("r1")


def test_write_10000_records(benchmark: Any, tmp_path: Path) -> None:
    records = stored_records(STORED)
    paths = (tmp_path / f"round{i}.sqlite" for i in range(100))

    def fresh_store() -> tuple[tuple[Path, list[Record]], dict[str, Any]]:
        return (next(paths), records), {}

    path = benchmark.pedantic(write_store, setup=fresh_store, rounds=3)
    assert read_records(path) == records


@pytest.fixture(scope="module")
def store_of_10000(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Record]]:
    records = stored_records(STORED)
    return write_store(tmp_path_factory.mktemp("store") / "bench.sqlite", records), records


def test_read_10000_records(benchmark: Any, store_of_10000: tuple[Path, list[Record]]) -> None:
    path, records = store_of_10000
    assert benchmark.pedantic(read_records, args=(path,), rounds=5) == records


def reported_records() -> list[Record]:
    """A 1,000-cell run of two models: the three pruning families of the headline figure, with top-1."""
    records: list[Record] = []
    for model in ("resnet18", "mnist_cnn"):
        for i in range(1, 201):
            level = i / 201
            for execution, speedup in (("dense", 1.0), ("csr", 0.2 + level)):
                records.append(
                    model_record(
                        "prune.unstructured",
                        {"sparsity": level, "execution": execution},
                        model=model,
                        theoretical=1 / (1 - level),
                        speedup=speedup,
                        top1=0.99 - level / 10,
                    )
                )
        for i in range(1, 101):
            level = i / 101
            records.append(
                model_record(
                    "prune.channel",
                    {"macs_removed": level},
                    model=model,
                    theoretical=1 / (1 - level),
                    speedup=0.8 / (1 - level),
                    top1=0.99 - level / 5,
                )
            )
    return records


def test_report_of_a_1000_record_run(benchmark: Any, tmp_path: Path) -> None:
    records = reported_records()
    assert len(records) == REPORTED
    run = Run("r1", "2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00", "ok", {}, {}, {"commit": "abc"})

    def report() -> tuple[Path | None, str]:
        stream = io.StringIO()
        return write_report(run, records, tmp_path / "report", stream).md, stream.getvalue()

    path, printed = benchmark.pedantic(report, rounds=3)
    assert path is not None and path.is_file()
    markdown = path.read_text()
    assert "## resnet18" in markdown and "## mnist_cnn" in markdown
    speedups = sorted(p.name for p in path.parent.glob("speedup-*.png"))
    assert speedups == ["speedup-mnist-cnn.png", "speedup-resnet18.png"]
    assert (path.parent / "report.html").is_file()
    assert any(line.startswith("channel ") for line in printed.splitlines())


def test_size_report_of_resnet18(benchmark: Any) -> None:
    model = resolve_model("resnet18").build()
    sizes = benchmark.pedantic(size_report, args=(model,), rounds=3)
    assert sizes["params_total"] == 11_689_512 and sizes["params_nonzero"] > 0
    assert all(value > 0 for value in sizes.values())
    # Random weights barely compress, and CSR's int32 index per value doubles them.
    assert sizes["size_gzip_bytes"] < sizes["size_dense_bytes"] < sizes["size_csr_bytes"]
