"""The worker zipapp: a deterministic build, and a real worker started from it alone, outside the repository.

The worker runs from a copy in a temporary folder with the project off the path, so these tests prove that the
archive holds everything it needs, as it must on a remote device.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from targets._zipapp import ARCHIVE_PACKAGE, PACKAGE_DIR, build_zipapp, worker_zipapp, zipapp_bytes

FEATURES = 256
LAYERS = 20

onnxruntime = pytest.importorskip("onnxruntime")


def test_two_builds_are_the_same_bytes_and_name(tmp_path: Path) -> None:
    first, second = build_zipapp(tmp_path / "a"), build_zipapp(tmp_path / "b")
    assert first.name == second.name == worker_zipapp().name
    assert first.read_bytes() == second.read_bytes() == zipapp_bytes()
    assert first.name.startswith("worker-") and first.suffix == ".pyz"
    assert build_zipapp(tmp_path / "a") == first and sorted(os.listdir(tmp_path / "a")) == [first.name]


def test_archive_holds_every_module_sorted_with_fixed_times() -> None:
    with zipfile.ZipFile(worker_zipapp()) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    modules = sorted(
        f"{ARCHIVE_PACKAGE}/{p.relative_to(PACKAGE_DIR).as_posix()}"
        for p in PACKAGE_DIR.rglob("*.py")
        if "__pycache__" not in p.parts
    )
    assert names == sorted(names) == sorted(["__main__.py", *modules])
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_sources_parse_as_python_3_9() -> None:
    with zipfile.ZipFile(worker_zipapp()) as archive:
        for name in archive.namelist():
            ast.parse(archive.read(name), filename=name, feature_version=(3, 9))


class _Chain(nn.Module):
    """``layers`` linear layers one after the other: about ``layers`` times the work of one."""

    def __init__(self, layers: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(*(nn.Linear(FEATURES, FEATURES) for _ in range(layers)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """TorchScript (``fast.pt``, ``slow.pt``) and ONNX (``fast.onnx``, ``slow.onnx``) files of one and LAYERS layers."""
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    paths = {}
    for name, layers in (("fast", 1), ("slow", LAYERS)):
        model = _Chain(layers).eval()
        paths[f"{name}.pt"] = str(folder / f"{name}.pt")
        torch.jit.script(model).save(paths[f"{name}.pt"])
        paths[f"{name}.onnx"] = str(folder / f"{name}.onnx")
        with pytest.warns(DeprecationWarning):  # the TorchScript-based exporter, asked for by dynamo=False
            torch.onnx.export(
                model, (torch.zeros(1, FEATURES),), paths[f"{name}.onnx"], dynamo=False,
                input_names=["input"], output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            )  # fmt: skip
    return paths


def _pair(models: dict[str, str], baseline: str, candidate: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"{baseline}-vs-{candidate}", "baseline": models[baseline], "candidate": models[candidate],
        "input_shape": [8, FEATURES], "warmup_s": 0.05, "budget_s": 0.3, "min_rounds": 4, **fields,
    }  # fmt: skip


@pytest.fixture(scope="module")
def zipapp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_zipapp(tmp_path_factory.mktemp("device"))


def _converse(zipapp: Path, requests: list[dict[str, Any]], without_ort: bool = False) -> list[dict[str, Any]]:
    """Send ``requests`` to a worker started from ``zipapp`` in its own folder, with the project off the path.

    ``without_ort`` makes ``import onnxruntime`` fail in the worker, as on a device that lacks it.
    """
    argv = [sys.executable, str(zipapp)]
    if without_ort:
        run = "import runpy, sys; sys.modules['onnxruntime'] = None; sys.argv = sys.argv[1:]; "
        argv = [sys.executable, "-c", run + "runpy.run_path(sys.argv[0], run_name='__main__')", str(zipapp)]
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        argv, input="".join(json.dumps(r) + "\n" for r in requests), capture_output=True, text=True,
        timeout=300, cwd=zipapp.parent, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture(scope="module")
def answers(zipapp: Path, models: dict[str, str]) -> list[dict[str, Any]]:
    """One worker's answers to info and to a request with a torchscript and two onnxruntime pairs."""
    threads = min(2, os.cpu_count() or 1)
    pairs = [
        _pair(models, "fast.pt", "slow.pt"),
        _pair(models, "fast.onnx", "slow.onnx", engine="onnxruntime"),
        _pair(models, "slow.onnx", "fast.onnx", engine="onnxruntime"),
    ]
    return _converse(zipapp, [{"op": "info"}, {"op": "time", "threads": threads, "pairs": pairs}])


def test_worker_from_the_zipapp_reports_onnxruntime_in_info(answers: list[dict[str, Any]]) -> None:
    info = answers[0]
    assert info["ok"] is True
    machine = info["machine"]
    assert machine["torch"] == torch.__version__
    assert machine["onnxruntime"] == onnxruntime.__version__
    assert machine["onnxruntime_providers"] == onnxruntime.get_available_providers()


def test_worker_from_the_zipapp_times_torchscript_and_onnxruntime_pairs(answers: list[dict[str, Any]]) -> None:
    response = answers[1]
    assert response["ok"] is True, response.get("error")
    script, ort_slower, ort_faster = response["results"]
    assert script["engine"] == {"name": "torchscript", "torch": torch.__version__, "quantized_engine": None}
    assert script["summary"]["speedup_median"] < 0.5
    assert ort_slower["summary"]["speedup_median"] < 0.5 < 2.0 < ort_faster["summary"]["speedup_median"]
    for result in (ort_slower, ort_faster):
        assert result["rounds"] >= 4 and len(result["speedups"]) == result["rounds"]
        assert result["engine"] == {
            "name": "onnxruntime",
            "version": onnxruntime.__version__,
            "graph_optimization_level": "ORT_ENABLE_ALL",
            "providers": ["CPUExecutionProvider"],
            "intra_op_threads": min(2, os.cpu_count() or 1),
            "inter_op_threads": 1,
        }


def test_bad_engine_fields_fail_before_timing_in_one_line(zipapp: Path, models: dict[str, str]) -> None:
    pairs = [
        _pair(models, "fast.onnx", "slow.onnx", engine="tensorrt"),
        _pair(models, "fast.onnx", "slow.onnx", engine="onnxruntime", quantized_engine="x86"),
        _pair(models, "fast.pt", "slow.pt", min_rounds=1),
    ]
    requests = [{"op": "time", "pairs": [pair]} for pair in pairs]
    unknown, quantized, rounds = _converse(zipapp, requests)
    assert all(r["ok"] is False and "\n" not in r["error"] for r in (unknown, quantized, rounds))
    assert unknown["error"] == (
        "ValueError: pair 'fast.onnx-vs-slow.onnx': engine must be one of onnxruntime, torchscript, got 'tensorrt'"
    )
    assert quantized["error"].startswith("ValueError: quantized_engine applies to torchscript pairs, not onnxruntime")
    assert rounds["error"] == "ValueError: pair 'fast.pt-vs-slow.pt': timing.min_rounds must be an integer >= 2, got 1"


def test_worker_without_onnxruntime_says_so_and_still_times_torchscript(zipapp: Path, models: dict[str, str]) -> None:
    requests = [
        {"op": "info"},
        {"op": "time", "pairs": [_pair(models, "fast.onnx", "slow.onnx", engine="onnxruntime")]},
        {"op": "time", "pairs": [_pair(models, "fast.pt", "slow.pt")]},
    ]
    info, ort, script = _converse(zipapp, requests, without_ort=True)
    assert info["machine"]["onnxruntime"] is None and info["machine"]["onnxruntime_providers"] == []
    assert ort["ok"] is False
    assert ort["error"] == "RuntimeError: onnxruntime is not installed on this device (pip install onnxruntime)"
    assert script["ok"] is True and script["results"][0]["rounds"] >= 4
