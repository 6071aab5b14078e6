"""The verbs that only read the store answer without torch: each runs in a fresh interpreter on a real store,
which then names the modules it imported.

`import torch` alone takes seconds; `list runs`, `export`, `merge`, `compare` and `history` need none of it, nor
the exporters and runtimes of the engines. Only `history` draws, so only it may import matplotlib.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.store.database import open_store
from tests.bench.conftest import REPO, SUBPROCESS_ENV
from tests.bench.record_factory import model_record

TORCH_AND_ENGINES = {"torch", "torch_pruning", "torchvision", "onnx", "onnxruntime"}

# Runs the verb as `python -m bench` does, then writes its exit status and the top-level modules it imported.
_PROBE = """
import json, sys
from bench.cli.main import main
code = main(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "modules": sorted({name.split(".")[0] for name in sys.modules})}, out)
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two finished runs of a few cells each, as the runner stores them."""
    path = tmp_path_factory.mktemp("light") / "results" / "bench.sqlite"
    path.parent.mkdir()
    with open_store(path) as opened:
        for night, speedup in ((1, 1.0), (2, 1.1)):
            run_id = f"20260101-00000{night}-aaaa"
            commit = {"commit": str(night) * 40, "dirty": False}
            opened.start_run(run_id, {"models": ["m"]}, [], {"hostname": "h"}, commit, None)
            opened.add_record(run_id, model_record("none", top1=0.9))
            opened.add_record(run_id, model_record("prune.unstructured", {"sparsity": 0.9}, speedup=speedup, top1=0.8))
            opened.add_record(run_id, model_record("prune.channel", {"macs_removed": 0.5}, status="skipped", error="x"))
            opened.finish_run(run_id, "finished")
    return path


def _verbs(store: Path, out: Path) -> dict[str, list[str]]:
    return {
        "list runs": ["list", "runs", "--store", str(store)],
        "export csv": ["export", "--store", str(store)],
        "export json": ["export", "--format", "json", "--output", str(out / "run.json"), "--store", str(store)],
        "export pytest-benchmark": ["export", "--format", "pytest-benchmark", "--store", str(store)],
        "merge": ["merge", str(store), "--into", str(out / "merged.sqlite")],
        "compare": ["compare", f"{store}@20260101-000001-aaaa", f"{store}@20260101-000002-aaaa"],
        "history": ["history", "--store", str(store), "--metric", "speedup", "--output", str(out / "history")],
    }


@pytest.mark.parametrize("verb", list(_verbs(Path("s"), Path("o"))))
def test_a_read_only_verb_imports_no_torch(verb: str, store: Path, tmp_path: Path) -> None:
    report = tmp_path / "modules.json"
    argv = _verbs(store, tmp_path)[verb]
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(report), *argv], cwd=REPO, env=SUBPROCESS_ENV, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    probed = json.loads(report.read_text())
    assert probed["code"] in ((0, 1) if verb == "compare" else (0,)), done.stdout + done.stderr
    imported = set(probed["modules"])
    assert not imported & TORCH_AND_ENGINES, f"{verb} imported {sorted(imported & TORCH_AND_ENGINES)}"
    if verb != "history":
        assert "matplotlib" not in imported, f"{verb} imported matplotlib, and draws nothing"
