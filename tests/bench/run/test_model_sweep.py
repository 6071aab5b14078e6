"""Torchvision models outside the registry through every compressor: each cell is measured, or says why not.

A compressor meets architectures its tests never built (channel shuffles, layer scales, squeeze-excitation);
where it cannot handle one, the cell must be `skipped` with a reason the suite wrote, naming the limit, and
never `failed` with an exception from deep inside a library.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import compressors
from bench.records import ModelRecord
from bench.store.database import read_store
from tests.bench.conftest import FAST_TIMING, run_main

pytestmark = pytest.mark.slow

# Small ImageNet models (224x224 is fixed for torchvision names), each with a structure the registry's lack.
MODELS = ["shufflenet_v2_x0_5", "mobilenet_v3_small", "efficientnet_b0", "regnet_y_400mf", "squeezenet1_0"]
CHAINS = [
    "prune.unstructured(sparsity=0.9)+quant.bits(bits=4)",
    "prune.channel(macs_removed=0.5)+quant.int8(calibration_batches=2)",
]
# Known limits: (model, compressor, chain stages or None) -> what the reason must say.
SHUFFLE = "torch-pruning cannot trace the channel shuffle"
KNOWN_LIMITS = {
    ("shufflenet_v2_x0_5", "prune.channel", None): f"prune.channel cannot prune shufflenet_v2_x0_5: {SHUFFLE}",
    ("shufflenet_v2_x0_5", "chain", CHAINS[1]): f"chain cannot prune shufflenet_v2_x0_5: {SHUFFLE}",
    # squeezenet classifies with a conv: dynamic int8, which quantizes nn.Linear only, fits the run's other models
    ("squeezenet1_0", "quant.int8_dynamic", None): "quant.int8_dynamic cannot apply to squeezenet1_0: no nn.Linear",
}
# What a library's exception looks like when it is the whole reason: "SomeError: ...".
RAW_EXCEPTION = re.compile(r"^[A-Z]\w*(Error|Exception|Interrupt)\b")


# Compressors that train need a model the suite trains (a bundled data set), which no torchvision name has.
UNTRAINED = [name for name in compressors.names() if not compressors.get(name).trains]


def _matrix(tmp_path: Path) -> Path:
    lines = [FAST_TIMING, "[compressors]"]
    for name in UNTRAINED:
        lines.append(f"chain = {{ stages = {json.dumps(CHAINS)} }}" if name == "chain" else f'"{name}" = {{}}')
    path = tmp_path / "sweep.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_compressor_on_torchvision_models(tmp_path: Path) -> None:
    store = tmp_path / "bench.sqlite"
    result = run_main([
        "run", "--config", str(_matrix(tmp_path)), "--models", ",".join(MODELS), "--finetune-steps", "0", "--no-layers",
        "--budget", "0.2", "--store", str(store),
    ])  # fmt: skip
    with read_store(store) as opened:
        records = opened.records(opened.run().run_id)
    rows = [(r.model, r.compressor, r.params.get("stages"), r.status, r.error or "") for r in records]
    table = "\n".join(f"{m:20} {c + (' ' + s if s else ''):85} {status:8} {error}" for m, c, s, status, error in rows)
    print(table)

    assert len(records) == len(MODELS) * (len(UNTRAINED) + len(CHAINS) - 1)
    failed = [row for row in rows if row[3] == "failed"]
    assert not failed, table
    assert result.code == 0, result.err
    for _model, _compressor, _stages, status, error in rows:
        assert status in ("ok", "skipped"), table
        assert not RAW_EXCEPTION.match(error), error
    skipped = {(m, c, s): error for m, c, s, status, error in rows if status == "skipped"}
    assert set(skipped) == set(KNOWN_LIMITS), table
    for key, reason in KNOWN_LIMITS.items():
        assert skipped[key].startswith(reason), skipped[key]


def test_int8_convnext_with_layer_scales_is_measured(tmp_path: Path) -> None:
    store = tmp_path / "bench.sqlite"
    config = tmp_path / "fast.toml"
    config.write_text(FAST_TIMING)
    result = run_main([
        "run", "--config", str(config), "--models", "convnext_tiny",
        "--compressors", "quant.int8:calibration_batches=2",
        "--finetune-steps", "0", "--no-layers", "--budget", "0.2", "--store", str(store),
    ])  # fmt: skip
    assert result.code == 0, result.out + result.err
    with read_store(store) as opened:
        (record,) = opened.records(opened.run().run_id)
    assert isinstance(record, ModelRecord) and record.ok, record.error
    # int8 kernels do the float graph's MACs.
    assert record.macs is not None and record.macs.dense == record.macs.baseline > 4e9
    assert record.executed_as is not None and record.executed_as.startswith("int8 kernels")
