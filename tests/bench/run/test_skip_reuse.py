"""A skip the code and the config decide is reused like an ok record; one the machine decides is measured again.

Real runs of digits_cnn on TorchScript and ONNX Runtime: CSR has no ONNX export, so its ONNX Runtime cell is
skipped by the engine itself; a worker whose machine facts lack onnxruntime stands for a device without it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

import bench.run.runner
import targets._worker_target
from bench.config.run_config import RunConfig, load_config
from bench.records import Record
from bench.run.matrix import Cell, expand
from bench.run.prepare import Preparation, skip_holds
from bench.run.runner import run_matrix
from bench.store.database import read_store
from tests.bench.conftest import write_fast_toml
from tests.bench.record_factory import MACHINE, model_record

CSR = {"sparsity": 0.9, "execution": "csr"}


def _config(tmp_path: Path, compressors: dict[str, Any], **overrides: Any) -> RunConfig:
    return load_config(
        write_fast_toml(tmp_path),
        {
            "models": ["digits_cnn"],
            "compressors": compressors,
            "engines": ["torchscript", "onnxruntime"],
            "finetune_steps": 5,
            "timing": {"budget_s": 0.2},
            "layers": {"models": []},
            "store": tmp_path / "bench.sqlite",
            **overrides,
        },
    )


def _records(config: RunConfig, run_id: str | None) -> list[Record]:
    assert run_id is not None
    with read_store(config.store) as store:
        return store.records(run_id)


class HostWork:
    """The cells measured (in the run's process) and the candidates prepared (in its host process), by cell label,
    written to one file that both processes append to."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def note(self, line: str) -> None:
        with self.path.open("a") as log:
            log.write(line + "\n")

    def steps(self) -> list[str]:
        return self.path.read_text().splitlines() if self.path.exists() else []

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


@pytest.fixture
def host_work(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> HostWork:
    """The host work done from now on (see `HostWork`)."""
    done = HostWork(tmp_path / "host-work.txt")
    measure, artifact = bench.run.runner.measure_model_cell, Preparation.artifact

    def measured(cell: Any, *args: Any, **kwargs: Any) -> Any:
        done.note(f"measure {cell.label}")
        return measure(cell, *args, **kwargs)

    def prepared(self: Preparation, cell: Any, *args: Any, **kwargs: Any) -> Any:
        done.note(f"prepare {cell.label}")
        return artifact(self, cell, *args, **kwargs)

    monkeypatch.setattr(bench.run.runner, "measure_model_cell", measured)
    monkeypatch.setattr(Preparation, "artifact", prepared)
    return done


def test_a_rerun_reuses_the_engine_limit_and_measures_nothing(tmp_path: Path, host_work: HostWork) -> None:
    config = _config(tmp_path, {"none": {}, "prune.unstructured": CSR})
    first = run_matrix(config, io.StringIO())
    assert first.counts == {"ok": 3, "skipped": 1}
    (skipped,) = [r for r in _records(config, first.run_id) if r.status == "skipped"]
    assert skipped.engine == "onnxruntime" and skipped.params["execution"] == "csr"
    assert skipped.error is not None and "ONNX" in skipped.error

    host_work.clear()
    again = run_matrix(config, io.StringIO())
    assert again.counts == {"reused": 4}
    assert host_work.steps() == []  # nothing compressed, exported or timed
    assert _records(config, again.run_id) == _records(config, first.run_id)

    forced = run_matrix(_config(tmp_path, {"prune.unstructured": CSR}, force=True), io.StringIO())
    assert forced.counts == {"ok": 1, "skipped": 1}  # --force finds the engine limit again, exporting for it
    assert any(step.startswith("prepare") and "onnxruntime" in step for step in host_work.steps())


def test_a_skip_the_machine_decided_is_measured_again(
    tmp_path: Path, host_work: HostWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, {"none": {}})
    real = targets._worker_target.WorkerTarget.machine_info

    def without_onnxruntime(self: Any) -> dict[str, Any]:
        machine = dict(real(self))
        machine.update(onnxruntime=None, onnxruntime_providers=[])
        return machine

    monkeypatch.setattr(targets._worker_target.WorkerTarget, "machine_info", without_onnxruntime)
    first = run_matrix(config, io.StringIO())
    assert first.counts == {"ok": 1, "skipped": 1}
    (skipped,) = [r for r in _records(config, first.run_id) if r.status == "skipped"]
    assert skipped.error is not None and "onnxruntime is not installed on the device" in skipped.error

    monkeypatch.setattr(targets._worker_target.WorkerTarget, "machine_info", real)  # the device has it now
    host_work.clear()
    again = run_matrix(config, io.StringIO())
    assert again.counts == {"reused": 1, "ok": 1}
    (onnx_cell,) = [cell for cell in expand(config) if cell.engine == "onnxruntime"]
    assert [step for step in host_work.steps() if step.startswith("measure")] == [f"measure {onnx_cell.label}"]
    statuses = {r.engine: r.status for r in _records(config, again.run_id)}
    assert statuses == {"torchscript": "ok", "onnxruntime": "ok"}


WITH_ORT = {**MACHINE, "onnxruntime": "1.20.0", "onnxruntime_providers": ["CPUExecutionProvider"]}
WITHOUT_ORT = {**MACHINE, "onnxruntime": None, "onnxruntime_providers": []}


@pytest.mark.parametrize(
    ("engine", "stored_on", "now_on", "holds"),
    [
        ("onnxruntime", WITH_ORT, WITH_ORT, True),  # the engine ran there and said no: the code's limit
        ("onnxruntime", WITHOUT_ORT, WITH_ORT, False),  # the device lacked the engine, and has it now
        ("onnxruntime", WITH_ORT, WITHOUT_ORT, False),  # the device lost the engine: say so, afresh
        ("torchscript", WITHOUT_ORT, WITHOUT_ORT, True),  # onnxruntime is no concern of a TorchScript cell
    ],
)
def test_a_skip_holds_where_the_machine_could_run_the_cell_then_and_now(
    engine: str, stored_on: dict[str, Any], now_on: dict[str, Any], holds: bool
) -> None:
    cell = Cell("model", "m", "none", (), "cpu", 1, 1, 0, engine=engine)
    stored = model_record(engine=engine, status="skipped", error="no", machine=stored_on)
    assert skip_holds(cell, stored, now_on, "cpu") is holds
