"""Integration: the default-like matrix on the real models (MNIST training, resnet18 at 224x224), tiny budgets."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.store import open_store
from tests.bench.conftest import run_main

pytestmark = pytest.mark.slow


def test_default_like_matrix_on_real_models(tmp_path: Path) -> None:
    config = tmp_path / "m.toml"
    config.write_text("[layers]\nbudget_s = 0.3\n")
    store = tmp_path / "results" / "bench.sqlite"
    result = run_main([
        "run", "--config", str(config), "--models", "mnist_cnn,resnet18",
        "--compressors", "none", "prune.unstructured:sparsity=0.9:execution=dense,csr", "prune.channel:macs_removed=0.9",
        "--budget", "0.5", "--finetune-steps", "20", "--layer-sparsities", "0.9", "--store", str(store),
    ])  # fmt: skip
    assert result.code == 0, result.err
    opened = open_store(store)
    try:
        run = opened.run()
        records = opened.records(run["run_id"])
    finally:
        opened.close()
    assert run["status"] == "finished"
    assert len(records) == 2 * 4 + 1
    assert all(r["status"] == "ok" for r in records)

    def one(model: str, compressor: str, execution: str | None = None, kind: str = "model") -> dict:
        (record,) = [
            r for r in records
            if r["model"] == model and r["kind"] == kind and r["compressor"] == compressor
            and (execution is None or r["params"].get("execution") == execution)
        ]  # fmt: skip
        return record

    mnist = one("mnist_cnn", "none")
    assert mnist["accuracy_baseline"] > 0.97 and mnist["accuracy_top1"] > 0.97
    assert "mnist test (10000 images)" in mnist["accuracy_note"]
    assert one("mnist_cnn", "prune.unstructured", "dense")["accuracy_top1"] > 0.9

    for record in (r for r in records if r["model"] == "resnet18" and r["kind"] == "model"):
        assert record["accuracy_top1"] is None and record["accuracy_baseline"] is None
        assert record["accuracy_note"] == "n/a (no weights)"
    channel = one("resnet18", "prune.channel")
    assert channel["theoretical_speedup"] > 5
    # huge effects only, with generous margins: the machine is shared
    assert channel["speedup_median"] > 1.5
    dense = one("resnet18", "prune.unstructured", "dense")
    assert dense["theoretical_speedup"] > 2  # global pruning removes fewer MACs than weights
    assert dense["speedup_median"] < 1.3
    assert dense["size_dense_bytes"] == one("resnet18", "none")["size_dense_bytes"]
    assert dense["size_csr_bytes"] < 0.5 * dense["size_dense_bytes"]

    layers = one("resnet18", "prune.unstructured", kind="layers")
    assert len(layers["layers"]) == 12  # distinct GEMM shapes of resnet18's 20 convs and its fc layer
    assert sum(len(g["layers"]) for g in layers["layers"]) == 21
    assert not [r for r in records if r["model"] == "mnist_cnn" and r["kind"] == "layers"]  # [layers] models = resnet18

    report = (store.parent / "runs" / run["run_id"] / "report.md").read_text()
    assert "## Finding" in report and "n/a (no weights)" in report
    assert "Finding" in result.out and "resnet18 layer level" in result.out
