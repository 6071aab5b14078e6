"""`python -m bench target check NAME`: the device's facts and a tiny model run there, or why not, in seconds."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.bench.conftest import run_main
from tests.sshd import LocalSshd, free_port


def _facts(out: str) -> dict[str, str]:
    return {name: value.strip() for name, _, value in (line.partition("  ") for line in out.splitlines())}


def test_cpu_check_describes_this_machine_and_runs_a_model() -> None:
    result = run_main(["target", "check", "cpu"])
    assert result.code == 0, result.err
    facts = _facts(result.out)
    assert facts["torch"] == torch.__version__
    assert facts["int8 cells pack for"] in ("x86", "fbgemm", "qnnpack")
    assert facts["model round trip"].startswith(
        f"a TorchScript file written by torch {torch.__version__} here loaded and ran there"
    )
    assert facts["can run the worker"].startswith("yes")
    try:
        import onnxruntime
    except ImportError:
        assert facts["onnxruntime"] == "not installed (pip install onnxruntime)"
    else:
        assert facts["onnxruntime"].startswith(f"{onnxruntime.__version__} (execution providers: ")
        assert "CPUExecutionProvider" in facts["onnxruntime"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a GPU")
def test_cuda_check_without_a_gpu_exits_1_with_the_reason() -> None:
    result = run_main(["target", "check", "cuda"])
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        f"cannot measure on cuda: unavailable: no CUDA device visible to torch (torch {torch.__version__}, "
    )


def _config(tmp_path: Path, name: str, table: dict[str, object]) -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(f"[targets.{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in table.items()))
    return path


def test_ssh_check_runs_over_ssh_without_the_matrix_cool_down(local_sshd: LocalSshd, tmp_path: Path) -> None:
    table = local_sshd.target_table(python=sys.executable, workdir=str(tmp_path / "remote"), cooldown_s=60)
    started = time.monotonic()
    result = run_main(["target", "check", "dev", "--config", str(_config(tmp_path, "dev", table))])
    assert result.code == 0, result.err
    assert time.monotonic() - started < 30  # the 60 s cool-down between cells is not a check's business
    facts = _facts(result.out)
    assert facts["target"] == "dev (ssh, bench-local)"
    assert facts["can run the worker"].startswith("yes")
    assert not list((tmp_path / "remote").iterdir())  # the session folder is gone


def test_unreachable_ssh_target_exits_1_with_one_line(tmp_path: Path) -> None:
    table = {"kind": "ssh", "host": "127.0.0.1", "port": free_port(), "connect_timeout_s": 5}
    result = run_main(["target", "check", "down", "--config", str(_config(tmp_path, "down", table))])
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "cannot measure on down: down: ssh could not connect or log in (127.0.0.1):"
    )
