"""Bad input through `python -m bench` as a user runs it: exit 2, one `error:` line, no traceback, nothing lost."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from PIL import Image

from bench.models.registry import resolve_model
from tests.bench.conftest import REPO, SUBPROCESS_ENV, TinyRun, bench_command, count_records, run_main

QUICK = ["--budget", "0.2", "--finetune-steps", "5", "--no-layers"]
CORES = os.cpu_count() or 1

# name -> (argv with {store}, {tmp}, {regular} placeholders, fragments the error line must contain)
BAD = {
    "unknown model": (["run", "--models", "resnt18", *QUICK, "--store", "{store}"],
                      ["unknown model 'resnt18'", "did you mean 'resnet18'"]),
    "unknown compressor": (["run", "--models", "digits_cnn", "--compressors", "prune.unstrctured", *QUICK,
                            "--store", "{store}"],
                           ["unknown compressor 'prune.unstrctured'", "prune.unstructured"]),
    "unknown target": (["run", "--models", "digits_cnn", "--targets", "tpu", *QUICK, "--store", "{store}"],
                       ["unknown target 'tpu'", "cpu"]),
    "sparsity 1.5": (["run", "--models", "digits_cnn", "--compressors", "prune.unstructured:sparsity=1.5", *QUICK,
                      "--store", "{store}"],
                     ["sparsity", "1.5"]),
    "bad toml": (["run", "--config", "{tmp}/bad.toml", *QUICK, "--store", "{store}"], ["not valid TOML", "bad.toml"]),
    "unknown toml key": (["run", "--config", "{tmp}/unknown.toml", *QUICK, "--store", "{store}"],
                         ["unknown key 'modles'"]),
    "store under a file": (["run", "--models", "digits_cnn", "--compressors", "none", *QUICK,
                            "--store", "{regular}/bench.sqlite"],
                           ["--store", "{regular}/bench.sqlite"]),
    "unknown engine": (["run", "--models", "digits_cnn", "--engines", "torchscript,onnxrt", *QUICK,
                        "--store", "{store}"],
                       ["unknown engine 'onnxrt'", "did you mean 'onnxruntime'", "torchscript"]),
    "threads 0": (["run", "--models", "digits_cnn", "--threads", "0", *QUICK, "--store", "{store}"], ["threads", "0"]),
    "missing config": (["run", "--config", "{tmp}/missing.toml", "--store", "{store}"],
                       ["no such file", "missing.toml"]),
    "report unknown run": (["report", "nosuchrun", "--store", "{store}"], ["unknown run 'nosuchrun'"]),
    "ssh target without host": (["run", "--config", "{tmp}/nohost.toml", *QUICK, "--store", "{store}"],
                                ["[targets.pi4]: 'host' is required", "nohost.toml"]),
    "target of unknown kind": (["run", "--config", "{tmp}/tpu.toml", *QUICK, "--store", "{store}"],
                               ["[targets.edge]: unknown kind 'tpu' (valid: cpu, cuda, ssh)"]),
    "host like an option": (["target", "check", "pi4", "--config", "{tmp}/option.toml"],
                            ["host '-oProxyCommand=sh' is not a host name"]),
    "check unknown target": (["target", "check", "pi5", "--config", "{tmp}/pi4.toml"],
                             ["unknown target 'pi5'", "did you mean 'pi4'", "[targets.NAME]"]),
    "config not utf-8": (["run", "--config", "{tmp}/latin1.toml", *QUICK, "--store", "{store}"],
                         ["latin1.toml is not UTF-8 text"]),
    "threads beyond cores": (["run", "--models", "digits_cnn", "--threads", str(CORES + 1), *QUICK,
                              "--store", "{store}"],
                             [f"threads: {CORES + 1} is more than the {CORES} logical cores of this machine"]),
    "empty weights": (["run", "--models", "digits_cnn", "--weights", "digits_cnn={tmp}/empty.pt", *QUICK,
                       "--store", "{store}"],
                      ["--weights digits_cnn: {tmp}/empty.pt is empty"]),
    "truncated weights": (["run", "--models", "digits_cnn", "--weights", "digits_cnn={tmp}/truncated.pt", *QUICK,
                           "--store", "{store}"],
                          ["--weights digits_cnn: cannot read {tmp}/truncated.pt as a state_dict"]),
    "class count": (["run", "--models", "digits_cnn", "--data", "digits_cnn={tmp}/two", *QUICK,
                     "--store", "{store}"],
                    ["--data digits_cnn: {tmp}/two has 2 class folders but digits_cnn has 10 outputs"]),
}  # fmt: skip


@pytest.fixture(scope="module")
def bad_results(tiny_run: TinyRun, tmp_path_factory: pytest.TempPathFactory):
    """Every bad command against a copy of the tiny run's store, run a few at a time."""
    tmp = tmp_path_factory.mktemp("bad")
    store = tiny_run.copy_store(tmp)
    (tmp / "bad.toml").write_text("models = [")
    (tmp / "unknown.toml").write_text('modles = ["resnet18"]\n')
    (tmp / "nohost.toml").write_text('[targets.pi4]\nkind = "ssh"\nuser = "pi"\n')
    (tmp / "pi4.toml").write_text('[targets.pi4]\nkind = "ssh"\nhost = "pi4.local"\n')
    (tmp / "tpu.toml").write_text('[targets.edge]\nkind = "tpu"\n')
    (tmp / "option.toml").write_text('[targets.pi4]\nkind = "ssh"\nhost = "-oProxyCommand=sh"\n')
    (tmp / "latin1.toml").write_bytes('models = ["caf\xe9"]\n'.encode("latin-1"))
    (tmp / "empty.pt").write_bytes(b"")
    torch.save(resolve_model("digits_cnn").build().state_dict(), tmp / "good.pt")
    (tmp / "truncated.pt").write_bytes((tmp / "good.pt").read_bytes()[:1000])
    for label in range(2):
        (tmp / "two" / f"c{label}").mkdir(parents=True)
        Image.new("L", (8, 8)).save(tmp / "two" / f"c{label}" / "0.png")
    regular = tmp / "regular"
    regular.write_text("a file, not a folder")
    before = count_records(store)
    values = {"store": str(store), "tmp": str(tmp), "regular": str(regular)}

    def run(argv: list[str]) -> tuple[int, str, str]:
        command = bench_command(*(arg.format(**values) for arg in argv))
        done = subprocess.run(command, cwd=REPO, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=180)
        return done.returncode, done.stdout, done.stderr

    # A few at a time: each pays torch's import, and dozens at once exhaust a small shared machine's memory.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(BAD, pool.map(run, (argv for argv, _ in BAD.values())), strict=True))
    return results, values, store, before


@pytest.mark.parametrize("name", BAD)
def test_bad_input_exits_2_with_one_error_line(bad_results, name: str) -> None:
    results, values, _, _ = bad_results
    code, out, err = results[name]
    assert code == 2, (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for fragment in BAD[name][1]:
        assert fragment.format(**values) in lines[0]


def test_nothing_stored_is_lost(bad_results, tiny_run: TinyRun) -> None:
    _, _, store, before = bad_results
    assert before == 4
    assert count_records(store) == before
    connection = sqlite3.connect(store)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        statuses = connection.execute("SELECT status FROM records").fetchall()
        runs = connection.execute("SELECT run_id, status FROM runs").fetchall()
    finally:
        connection.close()
    assert [s for (s,) in statuses] == ["ok"] * 4
    assert runs == [(tiny_run.run_id, "finished")]  # no bad command started a run


def test_unwritable_store_creates_nothing(bad_results) -> None:
    _, values, _, _ = bad_results
    assert Path(values["regular"]).read_text() == "a file, not a folder"


IN_PROCESS = {
    "threads not a number": (
        ["run", "--threads", "two"],
        "--threads expects a comma-separated list of integers, got 'two'",
    ),
    "unknown verb": (["frobnicate"], "invalid choice: 'frobnicate'"),
    "bad export format": (["export", "--format", "xml"], "invalid choice: 'xml'"),
    "no verb": ([], "the following arguments are required: verb"),
}


@pytest.mark.parametrize("argv, fragment", IN_PROCESS.values(), ids=IN_PROCESS.keys())
def test_argument_errors_in_process(argv: list[str], fragment: str, tmp_path: Path) -> None:
    result = run_main([*argv, "--store", str(tmp_path / "s.sqlite")] if argv and argv[0] != "frobnicate" else argv)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.err
    assert not (tmp_path / "s.sqlite").exists()
