"""The SSH target against the emulated Raspberry Pi: a model is shipped, run by aarch64 torch, JSON comes back.

Slow (the root file system takes minutes to build the first time, emulated torch seconds to import); skipped
with the reason where there is no root or binfmt_misc. Only the path is checked, never a speed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import targets
from bench.config.run_config import load_target_specs
from tests.arm_target.emulated_pi import TARGET_NAME, EmulatedPi
from tests.bench.conftest import FAST_TIMING, run_subprocess

pytestmark = pytest.mark.slow


def test_target_check_describes_the_emulated_pi(emulated_pi: EmulatedPi) -> None:
    done = run_subprocess("target", "check", TARGET_NAME, "--config", str(emulated_pi.config), timeout=300)
    print(done.stdout)
    assert done.returncode == 0, done.stderr
    facts = dict(line.split(None, 1) if " " in line else (line, "") for line in done.stdout.splitlines())
    assert "aarch64" in done.stdout and "Raspberry Pi 4 Model B" in done.stdout
    assert facts["torch"].strip().startswith("2.9.1")
    assert "int8 cells pack for  qnnpack" in done.stdout
    assert "model round trip" in done.stdout and "can run the worker   yes" in done.stdout


def test_run_measures_the_host_cpu_and_the_emulated_pi_side_by_side(emulated_pi: EmulatedPi, tmp_path: Path) -> None:
    config = tmp_path / "cpu-and-pi.toml"
    config.write_text(FAST_TIMING + emulated_pi.config.read_text())
    store = tmp_path / "results" / "bench.sqlite"
    done = run_subprocess(
        "run", "--config", str(config), "--targets", f"cpu,{TARGET_NAME}", "--models", "digits_cnn",
        "--compressors", "none", "quant.int8", "prune.unstructured:sparsity=0.9:execution=csr",
        "--engines", "torchscript,onnxruntime",
        "--no-layers", "--finetune-steps", "5", "--budget", "0.5", "--store", str(store), timeout=900,
    )  # fmt: skip
    print(done.stdout)
    assert done.returncode == 0, done.stderr[-3000:]
    exported = run_subprocess("export", "--format", "json", "--store", str(store))
    records = json.loads(exported.stdout)["records"]
    by_target: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record["engine"] == "onnxruntime":
            continue
        by_target.setdefault(record["target"], []).append(record)
    assert sorted(by_target) == ["cpu", TARGET_NAME]
    for group in by_target.values():
        assert [r["status"] for r in group] == ["ok"] * 3, [r.get("error") for r in group]
        assert all(r["timing"]["speedup_median"] > 0 and r["timing"]["samples_s"] for r in group)
    pi = {r["compressor"]: r for r in by_target[TARGET_NAME]}
    assert {r["machine"]["arch"] for r in pi.values()} == {"aarch64"}
    assert pi["none"]["machine"]["torch"].startswith("2.9.1")
    # The int8 model was packed for the ARM engine and run on it there; the host's cell used its own engine.
    assert pi["quant.int8"]["quantized_engine"] == "qnnpack" and "qnnpack" in pi["quant.int8"]["executed_as"]
    cpu_int8 = next(r for r in by_target["cpu"] if r["compressor"] == "quant.int8")
    assert cpu_int8["quantized_engine"] != "qnnpack"
    # ONNX Runtime cells on the Pi: its own aarch64 onnxruntime ran fp32 and its static int8; CSR has no ONNX form.
    ort = {r["compressor"]: r for r in records if r["engine"] == "onnxruntime" and r["target"] == TARGET_NAME}
    statuses = [ort[name]["status"] for name in ("none", "quant.int8")]
    assert statuses == ["ok", "ok"], [r.get("error") for r in ort.values()]
    assert ort["quant.int8"]["executed_as"].startswith("int8 QDQ (ONNX Runtime static quantization")
    assert ort["none"]["engine_details"]["providers"] == ["CPUExecutionProvider"]
    csr = ort["prune.unstructured"]
    assert csr["status"] == "skipped" and "cannot be exported to ONNX" in csr["error"]
    report = next((store.parent / "runs").glob("*/report.md")).read_text()
    assert "speedup cpu t=1 b=1" in report and f"speedup {TARGET_NAME} t=1 b=1" in report
    assert f"speedup {TARGET_NAME} onnxruntime t=1 b=1" in report
    # The session folder on the device went away with the run.
    assert not list((emulated_pi.rootfs / "tmp" / "compression-bench").glob("session-*"))


def test_an_onnxruntime_pair_runs_on_the_emulated_pi(emulated_pi: EmulatedPi, tmp_path: Path) -> None:
    paths = []
    for layers in (1, 4):
        path = tmp_path / f"linear{layers}.onnx"
        with pytest.warns(DeprecationWarning):  # the TorchScript-based exporter, asked for by dynamo=False
            torch.onnx.export(
                nn.Sequential(*(nn.Linear(16, 16) for _ in range(layers))), (torch.zeros(1, 16),), str(path),
                dynamo=False, input_names=["input"], output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            )  # fmt: skip
        paths.append(str(path))
    pair = {
        "id": "ort", "engine": "onnxruntime", "baseline": paths[0], "candidate": paths[1], "input_shape": [2, 16],
        "warmup_s": 0.01, "block_min_s": 0.005, "budget_s": 0.2, "min_rounds": 2, "max_rounds": 6,
    }  # fmt: skip
    with targets.create(load_target_specs(emulated_pi.config)[TARGET_NAME]) as pi:
        machine = pi.machine_info()
        (result,) = pi.time_pairs([pair], threads=1)
    assert machine["onnxruntime"] and "CPUExecutionProvider" in machine["onnxruntime_providers"]
    assert result["engine"]["name"] == "onnxruntime" and result["engine"]["version"] == machine["onnxruntime"]
    assert result["engine"]["providers"] == ["CPUExecutionProvider"] and result["engine"]["intra_op_threads"] == 1
    assert result["rounds"] >= 2 and all(s > 0 for s in result["speedups"])
