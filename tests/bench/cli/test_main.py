"""The CLI end to end on a tiny digits_cnn matrix: tables, finding, report, store contents, resume, listing, export."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from bench.records import LayersRecord, ModelRecord, Record
from bench.store.database import read_store
from tests.bench.conftest import TinyRun, run_main, tiny_run_args, write_fast_toml


def _records(store: Path, run_id: str | None = None) -> list[Record]:
    with read_store(store) as opened:
        return opened.records(opened.run(run_id).run_id)


def _model_records(store: Path, run_id: str | None = None) -> list[ModelRecord]:
    records = _records(store, run_id)
    assert all(isinstance(r, ModelRecord) for r in records)
    return [r for r in records if isinstance(r, ModelRecord)]


def test_tiny_run_output(tiny_run: TinyRun) -> None:
    out = tiny_run.result.out
    assert "\ndigits_cnn\n" in out
    rows = {line.split("  ")[0] for line in out.splitlines()}
    assert {"none", "unstr 90%", "unstr 90% csr", "channel 50%"} <= rows
    assert max(len(line) for line in out.splitlines()) <= 120
    assert re.search(r"Finding (NOT )?reproduced for digits_cnn on cpu t=1 b=1", out)
    assert f"run {tiny_run.run_id}: 4 measured, 0 reused from the store, 0 failed, 0 skipped" in out
    assert "[4/4]" in tiny_run.result.err


def test_tiny_run_writes_report_with_its_figure(tiny_run: TinyRun) -> None:
    report = tiny_run.store.parent / "runs" / tiny_run.run_id / "report.md"
    assert report.is_file()
    assert f"report: {report}" in tiny_run.result.out
    text = report.read_text()
    assert "## Finding" in text and "## digits_cnn" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    per_model = {f"{kind}-digits-cnn.png" for kind in ("speedup", "latency", "pareto-latency", "pareto-size")}
    assert per_model | {"theory-digits-cnn-cpu-t-1-b-1.png"} <= set(links)
    for link in links:
        figure = report.parent / link
        assert figure.is_file() and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (Path.cwd() / "results" / "runs" / tiny_run.run_id).exists()


def test_tiny_run_records(tiny_run: TinyRun) -> None:
    records = _model_records(tiny_run.store, tiny_run.run_id)
    assert len(records) == 4
    assert len({r.cell_id for r in records}) == 4
    by_variant = {(r.compressor, r.params.get("execution")): r for r in records}
    sizes, macs, accuracy = {}, {}, {}
    for record in records:
        assert record.status == "ok" and record.error is None
        assert record.kind == "model" and record.model == "digits_cnn"
        assert (
            record.timing is not None
            and record.sizes is not None
            and record.macs is not None
            and record.accuracy is not None
        )
        timing = record.timing
        assert len(timing.samples_s) == timing.rounds == len(timing.samples_speedup) == len(timing.samples_baseline_s)
        assert timing.rounds >= 3
        assert all(s > 0 for s in timing.samples_s)
        assert timing.speedup_ci_low is not None and timing.speedup_ci_high is not None
        assert timing.speedup_ci_low <= timing.speedup_median <= timing.speedup_ci_high
        for value in (record.accuracy.baseline, record.accuracy.top1, record.accuracy.before_recovery):
            assert value is not None and 0.0 <= value <= 1.0
        assert record.accuracy.baseline is not None and record.accuracy.baseline > 0.9
        assert record.machine_id and record.machine["cpu_count"] >= 1
        sizes[record.compressor, record.params.get("execution")] = record.sizes
        macs[record.compressor, record.params.get("execution")] = record.macs
        accuracy[record.compressor, record.params.get("execution")] = record.accuracy.top1
    dense, csr = by_variant[("prune.unstructured", "dense")], by_variant[("prune.unstructured", "csr")]
    assert dense.executed_as and csr.executed_as and dense.executed_as != csr.executed_as
    assert "CSR" in csr.executed_as and "dense" in dense.executed_as
    assert dense.finetune_steps == 5 and by_variant[("none", None)].finetune_steps == 0
    # the same weights run on two kernels: the same accuracy and the same count of non-zeros
    dense_sizes, csr_sizes = sizes["prune.unstructured", "dense"], sizes["prune.unstructured", "csr"]
    assert dense_sizes.params_nonzero == csr_sizes.params_nonzero < 0.2 * dense_sizes.params_total
    assert accuracy["prune.unstructured", "dense"] == pytest.approx(accuracy["prune.unstructured", "csr"], abs=0.01)
    assert macs["none", None].theoretical_speedup == pytest.approx(1.0)
    assert sizes["prune.channel", None].params_total < dense_sizes.params_total
    assert macs["prune.channel", None].theoretical_speedup > 1.5


def test_second_run_reuses_every_cell_and_force_measures_again(tiny_run: TinyRun, tmp_path: Path) -> None:
    store = tiny_run.copy_store(tmp_path)
    again = run_main(tiny_run_args(store, tiny_run.config))
    assert again.code == 0, again.err
    assert re.search(r"run \S+: 0 measured, 4 reused from the store, 0 failed, 0 skipped", again.out)
    assert again.err.count(" cached ") == 4 and "measuring" not in again.err
    first, second = _records(store, tiny_run.run_id), _records(store)
    assert [r.cell_id for r in first] == [r.cell_id for r in second]
    assert first == second  # the very same records, linked into the new run

    forced = run_main(tiny_run_args(store, tiny_run.config, "--force", compressors=["none"]))
    assert forced.code == 0, forced.err
    assert re.search(r"run \S+: 1 measured, 0 reused", forced.out)
    (new,) = _model_records(store)
    old = next(r for r in _model_records(store, tiny_run.run_id) if r.compressor == "none")
    assert new.timing is not None and old.timing is not None
    assert new.cell_id == old.cell_id and new.timing.samples_s != old.timing.samples_s


def test_list_verbs(tiny_run: TinyRun) -> None:
    models = run_main(["list", "models"])
    assert models.code == 0 and all(
        name in models.out for name in ("digits_cnn", "mnist_cnn", "resnet18", "n/a (no weights)")
    )
    comps = run_main(["list", "compressors"])
    assert comps.code == 0 and all(
        name in comps.out for name in ("none", "prune.unstructured", "prune.channel", "sparsity=0.9")
    )
    targs = run_main(["list", "targets"])
    assert targs.code == 0 and re.search(r"^cpu\s+cpu\s+-\s+yes", targs.out, re.M)
    assert re.search(r"^cuda\s+cuda\s+-\s+(yes|no)", targs.out, re.M)
    runs = run_main(["list", "runs", "--store", str(tiny_run.store)])
    assert runs.code == 0 and re.search(rf"^{tiny_run.run_id}\s+\S+\s+finished\s+digits_cnn", runs.out, re.M)


def test_report_and_export(tiny_run: TinyRun, tmp_path: Path) -> None:
    store = tiny_run.copy_store(tmp_path)
    report = run_main(["report", "--store", str(store)])
    assert report.code == 0, report.err
    assert "digits_cnn" in report.out and "Finding" in report.out
    assert (store.parent / "runs" / tiny_run.run_id / "report.md").is_file()
    assert run_main(["report", tiny_run.run_id, "--store", str(store)]).code == 0

    exported = run_main(["export", "--format", "csv", "--store", str(store)])
    assert exported.code == 0
    rows = list(csv.DictReader(io.StringIO(exported.out)))
    assert len(rows) == 4 and {row["status"] for row in rows} == {"ok"}
    assert "timing.speedup_median" in rows[0] and "efficiency" in rows[0]
    assert not any("samples" in column for column in rows[0])

    output = tmp_path / "out.json"
    exported = run_main(["export", tiny_run.run_id, "--format", "json", "--output", str(output), "--store", str(store)])
    assert exported.code == 0 and exported.out == ""
    data = json.loads(output.read_text())
    assert data["run"]["run_id"] == tiny_run.run_id and len(data["records"]) == 4
    assert all(len(r["timing"]["samples_s"]) == r["timing"]["rounds"] for r in data["records"])


def test_layer_sweep(tmp_path: Path) -> None:
    config = write_fast_toml(tmp_path, 'models = ["digits_cnn"]\n')  # appended to the [layers] table
    store = tmp_path / "bench.sqlite"
    result = run_main([
        "run", "--config", str(config), "--models", "digits_cnn", "--compressors", "none", "--budget", "0.2",
        "--finetune-steps", "5", "--layer-sparsities", "0.5,0.99", "--store", str(store),
    ])  # fmt: skip
    assert result.code == 0, result.err
    assert re.search(r"digits_cnn layer level \(cpu t=1 b=1\), break-even sparsity (\S+)", result.out)
    layers = [r for r in _records(store) if isinstance(r, LayersRecord)]
    assert [r.params["sparsity"] for r in layers] == [0.5, 0.99]
    for record in layers:
        assert record.status == "ok"
        assert {(g.m, g.k, g.n) for g in record.layers} == {(16, 9, 64), (32, 144, 64), (64, 512, 1), (10, 64, 1)}
        for gemm in record.layers:
            assert gemm.sparsity == pytest.approx(record.params["sparsity"], abs=0.02)
            assert gemm.dense_median_s > 0 and gemm.sparse_median_s > 0
            assert gemm.speedup_ci_low is not None and gemm.speedup_ci_high is not None
            assert gemm.speedup_ci_low <= gemm.speedup_median <= gemm.speedup_ci_high
        assert record.theoretical_speedup == pytest.approx(1 / (1 - record.params["sparsity"]))
        total_dense = sum(len(g.layers) * g.dense_median_s for g in record.layers)
        assert record.dense_s == pytest.approx(total_dense)
    report = (store.parent / "runs" / _run_id(store) / "report.md").read_text()
    assert "Break-even sparsity" in report and "layers-digits-cnn" in report


def _run_id(store: Path) -> str:
    with read_store(store) as opened:
        return opened.run().run_id
