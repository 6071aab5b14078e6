"""Reports of GPU runs from hand-made records: 2:4 layer rows apart from the CSR break-even, and the GPU column."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bench.analysis.series import layer_series
from bench.records import LayersRecord, machine_id
from bench.report.write import layer_table, machine_table, write_report
from bench.run.matrix import SEMI_STRUCTURED
from bench.store.database import Run
from tests.bench.record_factory import layers_record

CPU_MACHINE = {
    "arch": "x86_64",
    "cpu_model": "Some CPU",
    "cpu_count": 16,
    "memory_bytes": 2**37,
    "torch": "2.14.1",
    "cuda_device": None,
    "cuda": None,
}
GPU = {
    "name": "NVIDIA H100 80GB HBM3",
    "capability": "9.0",
    "memory_bytes": 80 * 2**30,
    "device_count": 1,
    "runtime": "13.0",
    "driver": "580.65.06",
}
GPU_MACHINE = {**CPU_MACHINE, "cuda_device": GPU["name"], "cuda": GPU}


def _semi_structured(target: str) -> LayersRecord:
    return layers_record(
        target, {"pattern": SEMI_STRUCTURED, "sparsity": 0.5}, [1.6, 1.6], GPU_MACHINE, padded=(32, 64, 64),
        executed_as="dense fp16 GEMM (torch.mm) vs 2:4 semi-structured fp16 GEMM (cuSPARSELt)",
        execution_notes="padded for the semi-structured kernels, dense and sparse alike: 16x9x64 -> 32x64x64",
        semi_structured_backend="cuSPARSELt",
    )  # fmt: skip


@pytest.fixture
def records() -> list[LayersRecord]:
    """CSR at 0.5 and 0.9 on the CPU and on `cuda`, 2:4 on `cuda`, and `gpu2` with nothing but 2:4."""
    found = []
    for target, machine in (("cpu", CPU_MACHINE), ("cuda", GPU_MACHINE)):
        found += [layers_record(target, {"sparsity": s}, [v, v], machine) for s, v in ((0.5, 0.5), (0.9, 2.0))]
    return [*found, _semi_structured("cuda"), _semi_structured("gpu2")]


def test_2_4_records_stay_out_of_the_csr_series(records: list[LayersRecord]) -> None:
    series = layer_series(records)
    assert set(series) == {("digits_cnn", "cpu t=1 b=1"), ("digits_cnn", "cuda t=1 b=1")}
    assert all(r.pattern is None for group in series.values() for r in group)


def test_layer_table_shows_2_4_as_its_own_row(records: list[LayersRecord]) -> None:
    headers, rows = layer_table([r for r in records if r.target == "cuda"])
    assert headers[:2] == ["sparsity", "sparse kernel"]
    assert [row[:2] for row in rows] == [
        ["0.5", "CSR"],
        ["0.9", "CSR"],
        ["2:4", "2:4 fp16, cuSPARSELt, 1 of 2 shapes padded"],
    ]
    assert rows[2][4] == "1.60x" and rows[2][5] == "2 / 2"


def test_machine_table_gpu_column_names_driver_and_runtime(records: list[LayersRecord]) -> None:
    old = {**GPU_MACHINE, "cuda": None}  # a record from before the worker reported the `cuda` dict
    extra = layers_record("old", {"sparsity": 0.5}, [1.0, 1.0], old)
    _, rows = machine_table([*records, extra])
    gpu = {row[0]: row[5] for row in rows}
    assert gpu == {
        "cpu": "-",
        "cuda": "NVIDIA H100 80GB HBM3 (driver 580.65.06, CUDA 13.0)",
        "gpu2": gpu["cuda"],
        "old": GPU["name"],
    }


def test_machine_id_of_a_cpu_record_ignores_the_cuda_details() -> None:
    assert machine_id(CPU_MACHINE) == machine_id({**CPU_MACHINE, "cuda": {"driver": "1"}})
    assert machine_id(CPU_MACHINE) != machine_id(GPU_MACHINE)


def test_report_keeps_break_even_csr_only_and_lists_2_4_rows(records: list[LayersRecord], tmp_path: Path) -> None:
    out = io.StringIO()
    run = Run("r1", "2026-01-01T00:00:00+00:00", None, "finished", {}, {}, {})
    path = write_report(run, list(records), tmp_path / "report", out, wide=True).md
    assert path is not None
    text, report = out.getvalue(), path.read_text()
    # 2:4 at 1.6x would make the break-even "<= 0.5" if it were a point of the CSR curve.
    assert "digits_cnn layer level (cuda t=1 b=1), break-even sparsity 0.700" in text
    assert "digits_cnn layer level (gpu2 t=1 b=1)\n" in text
    assert "2:4 fp16, cuSPARSELt, 1 of 2 shapes padded" in text
    assert "## digits_cnn, layer level (gpu2 t=1 b=1)" in report and "layers-digits-cnn-gpu2" not in report
    assert "16x9x64 -> 32x64x64" in report
