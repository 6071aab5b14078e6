"""Integration: torchvision's transformers and grouped convolutions through one cell of every compressor family, on
both engines. Every cell ends ok, or skipped or failed with a sentence the suite wrote, never a library's exception.

swin_t (its attention reads its Linear layers' weights itself) and resnext50_32x4d (grouped convs) at 224x224 with
random weights go through every family. digits_cnn is in that run because the families that train as they compress
(iterative pruning, dynamic networks) need a model the suite trains somewhere in a run, else the run is refused
before it starts; on the torchvision models those cells are skipped with the reason. vit_b_16 (torch's
MultiheadAttention, whose fused kernel reads `out_proj.weight`) goes, in a second run, through the families where
its attention takes a path of its own (its ONNX export, low-rank, CSR and channel pruning): its other cells ran as
swin_t's do and cost 3 more minutes on a 2-core machine (each of its 86M-weight candidates is encoded, gzipped and
saved in full). Timing is cut to two rounds: the cells are here for what they do, not their speed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.labels import families, family
from bench.records import ModelRecord
from bench.store.database import read_store
from tests.bench.conftest import CliResult, run_main

pytestmark = pytest.mark.slow

MODELS = ["swin_t", "resnext50_32x4d", "digits_cnn"]
VIT, VIT_FAMILIES = "vit_b_16", ["baseline", "unstructured CSR", "channel", "low-rank"]
ENGINES = ["torchscript", "onnxruntime"]
# One cell per family, at cheap parameters: family -> (compressor, its grid).
CELLS: dict[str, tuple[str, dict[str, list[object]]]] = {
    "baseline": ("none", {}),
    "unstructured": ("prune.unstructured", {"sparsity": [0.5], "execution": ["dense"]}),
    "unstructured CSR": ("prune.unstructured", {"sparsity": [0.5], "execution": ["csr"]}),
    "channel": ("prune.channel", {"macs_removed": [0.5]}),
    "iterative": ("prune.iterative", {"rate": [0.5], "rounds": [1]}),
    "quantization": ("quant.int8", {"calibration_batches": [1]}),
    "architecture": ("arch.dsconv", {}),
    "low-rank": ("lowrank.svd", {"rank_ratio": [0.25]}),
    "chain": ("chain", {"stages": ["prune.unstructured(sparsity=0.9)+quant.bits(bits=4)"]}),
    "dynamic": ("dynamic.early_exit", {}),
}
TIMING = """
[timing]
warmup_s = 0.01
block_min_s = 0.001
min_rounds = 2
max_rounds = 2
"""
# What a library's exception looks like when it is the start of a reason: "AttributeError: ...", "Fail: ...".
RAW_EXCEPTION = re.compile(r"^[\w.]*[A-Z]\w*: ")
# Cells a library error used to fail or skip, which now run.
NOW_OK = [
    ("swin_t", "low-rank", "torchscript"), ("swin_t", "low-rank", "onnxruntime"),
    (VIT, "low-rank", "torchscript"), (VIT, "low-rank", "onnxruntime"),
    ("swin_t", "quantization", "onnxruntime"), (VIT, "baseline", "onnxruntime"),
]  # fmt: skip


def _matrix(path: Path, cells: list[str]) -> Path:
    """The compressors of the families `cells` as a matrix file: two families share a compressor, so its grid lists
    both executions."""
    grids: dict[str, dict[str, list[object]]] = {}
    for name, grid in (CELLS[cell] for cell in cells):
        merged = grids.setdefault(name, {})
        for key, values in grid.items():
            merged[key] = [*merged.get(key, []), *(v for v in values if v not in merged.get(key, []))]
    lines = [TIMING, "[compressors]"]
    for name, grid in grids.items():
        fields = ", ".join(f"{key} = {json.dumps(values)}" for key, values in grid.items())
        lines.append(f'"{name}" = {{ {fields} }}')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(directory: Path, models: list[str], cells: list[str]) -> tuple[CliResult, list[ModelRecord]]:
    """One run of `models` x the families `cells` x both engines, in a store of its own; its result and records."""
    store = directory / "bench.sqlite"
    result = run_main([
        "run", "--config", str(_matrix(directory / "matrix.toml", cells)), "--models", ",".join(models),
        "--targets", "cpu", "--engines", ",".join(ENGINES), "--threads", "1", "--budget", "0.05",
        "--finetune-steps", "4", "--no-layers", "--store", str(store),
    ])  # fmt: skip
    with read_store(store) as opened:
        run = opened.run()
        records = [r for r in opened.records(run.run_id) if isinstance(r, ModelRecord)]
    assert run.status == "finished", result.err
    assert len(records) == len(models) * len(cells) * len(ENGINES), _table(records)
    assert result.code == (1 if any(r.status == "failed" for r in records) else 0), result.err
    return result, records


def _table(records: list[ModelRecord]) -> str:
    """Families x models, each cell its status per engine (torchscript/onnxruntime), then every reason once."""
    models = [model for model in (*MODELS[:1], VIT, *MODELS[1:]) if any(r.model == model for r in records)]
    status = {(r.model, family(r), r.engine): r.status for r in records}
    width = max(len(name) for name in CELLS) + 2
    lines = [f"{'family':{width}}" + "".join(f"{model:>18}" for model in models)]
    for name in CELLS:
        cells = ["/".join(status.get((model, name, engine), "-") for engine in ENGINES) for model in models]
        lines.append(f"{name:{width}}" + "".join(f"{cell:>18}" for cell in cells))
    lines.append(f"(each cell: {' / '.join(ENGINES)}; - not run)")
    for r in sorted(records, key=lambda r: (models.index(r.model), list(CELLS).index(family(r)), r.engine)):
        if r.status != "ok":
            lines.append(f"{r.model} | {family(r)} | {r.engine} | {r.status}: {r.error}")
    return "\n".join(lines)


def test_transformers_and_grouped_convs_through_every_family(tmp_path: Path) -> None:
    _, every_family = _run(tmp_path / "all", MODELS, list(CELLS))
    _, vit = _run(tmp_path / "vit", [VIT], VIT_FAMILIES)
    records = every_family + vit
    table = _table(records)
    print(table)

    assert {family(r) for r in every_family} == set(CELLS) == set(families()) - {"other"}
    assert {family(r) for r in vit} == set(VIT_FAMILIES)
    assert all(r.status in ("ok", "skipped", "failed") for r in records), table
    for record in records:
        if record.status == "ok":
            continue
        error = record.error or ""
        assert error and "\n" not in error and "Traceback" not in error, error
        assert not RAW_EXCEPTION.match(error), error
    status = {(r.model, family(r), r.engine): r.status for r in records}
    assert all(status[cell] == "ok" for cell in NOW_OK), table
