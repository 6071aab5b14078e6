"""Integration: the default-like matrix on the real models (MNIST training, resnet18 at 224x224), tiny budgets."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.records import LayersRecord, ModelRecord
from bench.store.database import read_store
from tests.bench.conftest import run_main

pytestmark = pytest.mark.slow


def test_default_like_matrix_on_real_models(tmp_path: Path) -> None:
    config = tmp_path / "m.toml"
    config.write_text("[layers]\nbudget_s = 0.3\n")
    store = tmp_path / "results" / "bench.sqlite"
    result = run_main([
        "run", "--config", str(config), "--models", "mnist_cnn,resnet18",
        "--compressors", "none", "prune.unstructured:sparsity=0.9:execution=dense,csr",
        "prune.channel:macs_removed=0.9",
        "--budget", "0.5", "--finetune-steps", "20", "--layer-sparsities", "0.9", "--store", str(store),
    ])  # fmt: skip
    assert result.code == 0, result.err
    with read_store(store) as opened:
        run = opened.run()
        records = opened.records(run.run_id)
    assert run.status == "finished"
    assert len(records) == 2 * 4 * 2 + 1  # models x compressors x the default's two engines, and the layer sweep
    # Every cell ran but CSR on ONNX Runtime, which ONNX cannot express.
    not_ok = [r for r in records if not r.ok]
    assert {(r.engine, r.params.get("execution"), r.status) for r in not_ok} == {("onnxruntime", "csr", "skipped")}
    assert len(not_ok) == 2

    def one(model: str, compressor: str, execution: str | None = None, engine: str = "torchscript") -> ModelRecord:
        (record,) = [
            r for r in records
            if isinstance(r, ModelRecord) and r.model == model and r.compressor == compressor and r.engine == engine
            and (execution is None or r.params.get("execution") == execution)
        ]  # fmt: skip
        assert record.accuracy and record.timing and record.macs and record.sizes
        return record

    mnist = one("mnist_cnn", "none").accuracy
    assert mnist and mnist.baseline and mnist.top1 and mnist.note
    assert mnist.baseline > 0.97 and mnist.top1 > 0.97
    assert "mnist test (10000 images)" in mnist.note
    pruned = one("mnist_cnn", "prune.unstructured", "dense").accuracy
    assert pruned and pruned.top1 and pruned.top1 > 0.9
    # ONNX Runtime evaluates its own export of the very same weights: the same top-1 but for rounding-close calls.
    exported = one("mnist_cnn", "prune.unstructured", "dense", "onnxruntime").accuracy
    assert exported and exported.top1 is not None and abs(exported.top1 - pruned.top1) <= 0.002
    ort_channel = one("resnet18", "prune.channel", engine="onnxruntime")
    assert ort_channel.timing and ort_channel.timing.speedup_median > 1.5
    assert ort_channel.engine_details["graph_optimization_level"] == "ORT_ENABLE_ALL"

    for record in (r for r in records if isinstance(r, ModelRecord) and r.model == "resnet18" and r.ok):
        assert record.accuracy and record.accuracy.top1 is None and record.accuracy.baseline is None
        assert record.accuracy.note == "n/a (no weights)"
    channel = one("resnet18", "prune.channel")
    assert channel.macs and channel.macs.theoretical_speedup > 5
    # huge effects only, with generous margins: the machine is shared
    assert channel.timing and channel.timing.speedup_median > 1.5
    dense = one("resnet18", "prune.unstructured", "dense")
    assert dense.macs and dense.macs.theoretical_speedup > 2  # global pruning removes fewer MACs than weights
    assert dense.timing and dense.timing.speedup_median < 1.3
    baseline_sizes = one("resnet18", "none").sizes
    assert dense.sizes and baseline_sizes and dense.sizes.dense_bytes == baseline_sizes.dense_bytes
    assert dense.sizes.csr_bytes < 0.5 * dense.sizes.dense_bytes

    (layers,) = [r for r in records if isinstance(r, LayersRecord)]  # [layers] models = resnet18 only
    assert layers.model == "resnet18"
    assert len(layers.layers) == 12  # distinct GEMM shapes of resnet18's 20 convs and its fc layer
    assert sum(len(g.layers) for g in layers.layers) == 21

    report = (store.parent / "runs" / run.run_id / "report.md").read_text()
    assert "## Finding" in report and "n/a (no weights)" in report
    assert "Finding" in result.out and "resnet18 layer level" in result.out
