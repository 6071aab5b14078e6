"""Matrix files and flags of the wrong shape, type or size: one BenchError line naming the field, never another
exception, and nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.cli.main import build_parser
from bench.cli.run import config_overrides
from bench.config.run_config import load_config, parse_compressor_spec
from bench.errors import BenchError
from tests.bench.conftest import run_main

CORES = os.cpu_count() or 1

# A small model and no layer sweep, so a file that is right builds only digits_cnn.
SMALL = 'models = ["digits_cnn"]\ncompressors = { none = {} }\n[layers]\nmodels = []\n'

# text of the matrix file -> fragments the one-line error must contain
BAD_TREES = {
    "models a number": ("models = 3", ["models must be a name or a list of names, got 3"]),
    "models nested": ("models = [[1]]", ["models must be a name or a list of names, got [[1]]"]),
    "compressors a string": ('compressors = "x"', ["compressors must be a table", "got 'x'"]),
    "compressors a list": ("compressors = []", ["compressors must be a table", "got []"]),
    "unquoted dotted name": ("compressors.prune.unstructured = 5",
                             ["unknown compressor 'prune'", '[compressors."prune.unstructured"]']),
    "grid a number": ("[compressors]\nnone = 1", ["compressors.none must be a table of parameters", "got 1"]),
    "grid of lists": ('[compressors."quant.bits"]\nbits = [[4]]',
                      ["compressors.quant.bits.bits must be a value or a non-empty list", "[[4]]"]),
    "grid a table": ('[compressors."prune.unstructured"]\nsparsity = { a = 1 }',
                     ["compressors.prune.unstructured.sparsity", "{'a': 1}"]),
    "grid empty": ('[compressors."prune.unstructured"]\nsparsity = []',
                   ["compressors.prune.unstructured.sparsity must be a value or a non-empty list"]),
    "grid nan": ('[compressors."prune.unstructured"]\nsparsity = [0.5, nan]',
                 ["compressors.prune.unstructured.sparsity", "inf and nan are not accepted"]),
    "grid a date": ('[compressors."prune.unstructured"]\nsparsity = 1979-05-27',
                    ["compressors.prune.unstructured.sparsity", "1979"]),
    "timing a number": ("timing = 1", ["timing must be a table, got 1"]),
    "recovery a list": ("recovery = []", ["recovery must be a table, got []"]),
    "layers a number": ("layers = 5", ["layers must be a table, got 5"]),
    "text in sparsities": ('[layers]\nsparsities = ["a"]', ["layers.sparsities must be a list of numbers, got 'a'"]),
    "weights a number": ("weights = 3", ['weights must be a table of MODEL = "PATH", got 3']),
    "data a list": ("data = []", ['data must be a table of MODEL = "PATH", got []']),
    "weights path a number": ("[weights]\ndigits_cnn = 5", ["weights.digits_cnn must be a path, got 5"]),
    "targets table of numbers": ("targets = { a = 1 }", ["targets.a must be a table of settings, got 1"]),
    "threads a table": ("threads = { a = 1 }", ["threads must be an integer or a list of integers, got {'a': 1}"]),
    "batch a float": ("batch = [1.0]", ["batch must be an integer or a list of integers, got [1.0]"]),
    "threads true": ("threads = true", ["threads must be an integer or a list of integers, got True"]),
    "steps a string": ('finetune_steps = "5"', ["finetune_steps must be an integer, got '5'"]),
    "budget inf": ("[timing]\nbudget_s = inf",
                   ["timing.budget_s must be finite: inf and nan are not accepted, got inf"]),
    "warmup -inf": ("[timing]\nwarmup_s = -inf", ["timing.warmup_s", "got -inf"]),
    "sparsities nan": ("[layers]\nsparsities = [nan]",
                       ["layers.sparsities must be finite: inf and nan are not accepted, got nan"]),
    "temperature nan": ("[recovery]\ntemperature = nan", ["recovery.temperature", "got nan"]),
    "budget beyond a day": ("[timing]\nbudget_s = 86401", ["timing.budget_s must be in (0, 86400] seconds, got 86401"]),
    "layer budget beyond a day": ('[layers]\nmodels = ["resnet18"]\nbudget_s = 1e6',
                                  ["layers.budget_s must be in (0, 86400] seconds, got 1000000.0"]),
    "ci above 1": ("[timing]\nci_rel = 2.0", ["timing.ci_rel must be in (0, 1], got 2.0"]),
    "rounds beyond bound": ("[timing]\nmax_rounds = 1000000000",
                            ["timing.max_rounds must be in timing.min_rounds (6)..100000"]),
    "no sparsities": ('[layers]\nmodels = ["resnet18"]\nsparsities = []', ["layers.sparsities must not be empty"]),
    "batch beyond bound": ("batch = [4097]", ["batch must be integers in 1..4096, got 4097"]),
    "steps beyond bound": ("finetune_steps = 100001", ["finetune_steps must be an integer in 0..100000, got 100001"]),
    "threads beyond cores": (f"threads = [{CORES + 1}]",
                             [f"threads: {CORES + 1} is more than the {CORES} logical cores of this machine"
                              " (target 'cpu')"]),
    "ssh timeout inf": ('[targets.pi]\nkind = "ssh"\nhost = "pi"\nconnect_timeout_s = inf',
                        ["'connect_timeout_s' must be a finite number, got inf"]),
}  # fmt: skip


@pytest.mark.parametrize(("text", "fragments"), BAD_TREES.values(), ids=BAD_TREES.keys())
def test_a_wrong_file_is_one_bench_error(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = tmp_path / "matrix.toml"
    path.write_text(text + "\n")
    with pytest.raises(BenchError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_a_wrong_value_in_the_file_is_an_error_even_where_a_flag_overrides_it(tmp_path: Path) -> None:
    path = tmp_path / "matrix.toml"
    path.write_text(f"threads = [1.5]\n{SMALL}")
    with pytest.raises(
        BenchError, match=r"threads must be an integer or a list of integers, got \[1.5\] \(in .*matrix.toml\)"
    ):
        load_config(path, {"threads": [1]})


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'models = ["digits_cnn"]\n\xff\xfe', "is not UTF-8 text, as TOML must be (byte 0xff at offset 24)"),
        (b"a = " + b"[" * 5000 + b"]" * 5000, "nests arrays or tables too deeply to read"),
    ],
    ids=["not utf-8", "nested too deeply"],
)
def test_files_tomllib_cannot_read_are_one_line(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "matrix.toml"
    path.write_bytes(content)
    with pytest.raises(BenchError, match="--config: ") as info:
        load_config(path)
    assert fragment in str(info.value) and str(path) in str(info.value)


def test_a_folder_as_config_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=rf"^--config: {tmp_path} is a folder, expected a TOML file$"):
        load_config(tmp_path)


def test_a_device_or_a_huge_file_as_config_is_refused_before_reading_it_all(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=r"^--config: /dev/zero is not a regular file$"):
        load_config(Path("/dev/zero"))  # it never ends: reading it would fill the memory
    huge = tmp_path / "log.toml"
    huge.write_text("# a log\n" * 200_000)
    with pytest.raises(BenchError, match=r"log.toml is larger than 1 MiB, not a matrix file$"):
        load_config(huge)


def test_list_targets_checks_the_file_as_run_does(tmp_path: Path) -> None:
    path = tmp_path / "matrix.toml"
    path.write_text("targets = 1\n")
    result = run_main(["list", "targets", "--config", str(path)])
    assert (result.code, result.err) == (2, f"error: targets must be a name or a list of names, got 1 (in {path})\n")


SMALL_FLAGS = {"--models": "digits_cnn", "--compressors": "none"}

# flags -> the one error line, exactly
BAD_FLAGS = {
    "threads 0": (["--threads", "0"], "threads must be integers in 1..1024, got 0"),
    "threads comma": (["--threads", ","], "--threads expects a comma-separated list of integers, got ','"),
    "threads empty item": (["--threads", "1,,2"], "--threads expects a comma-separated list of integers, got '1,,2'"),
    "threads beyond cores": (["--threads", str(CORES + 1)],
                             f"threads: {CORES + 1} is more than the {CORES} logical cores of this machine"
                             f" (target 'cpu'); accepted: 1..{CORES}"),
    "batch -1": (["--batch", "-1"], "batch must be integers in 1..4096, got -1"),
    "batch huge": (["--batch", "100000"], "batch must be integers in 1..4096, got 100000"),
    "steps -5": (["--finetune-steps", "-5"], "finetune_steps must be an integer in 0..100000, got -5"),
    "steps huge": (["--finetune-steps", "10000000"], "finetune_steps must be an integer in 0..100000, got 10000000"),
    "budget inf": (["--budget", "inf"], "--budget expects a finite number of seconds, got 'inf'"),
    "budget nan": (["--budget", "nan"], "--budget expects a finite number of seconds, got 'nan'"),
    "budget -inf": (["--budget=-inf"], "--budget expects a finite number of seconds, got '-inf'"),
    "budget a week": (["--budget", "604800"], "timing.budget_s must be in (0, 86400] seconds, got 604800.0"),
    "layer sparsity nan": (["--layer-sparsities", "nan"],
                           "--layer-sparsities expects a comma-separated list of numbers, got 'nan'"),
    "weights no model": (["--weights", "=x"], "--weights expects MODEL=PATH, got '=x'"),
    "models empty item": (["--models", "digits_cnn,,"],
                          "--models expects a comma-separated list of names, got 'digits_cnn,,'"),
    "spec empty value": (["--compressors", "prune.unstructured:sparsity="],
                         "--compressors: expected KEY=V1,V2 after 'prune.unstructured:', got 'sparsity='"),
    "spec colons": (["--compressors", ":::"], "--compressors: expected NAME[:KEY=V1,V2[:KEY=V...]], got ':::'"),
    "spec key twice": (["--compressors", "prune.unstructured:sparsity=0.5:sparsity=0.9"],
                       "--compressors: 'sparsity' is given twice in 'prune.unstructured:sparsity=0.5:sparsity=0.9'"
                       " (list its values once: sparsity=V1,V2)"),
    "spec empty item": (["--compressors", "prune.unstructured:sparsity=0.5,"],
                        "--compressors: empty value in 'sparsity=0.5,' (expected sparsity=V1,V2)"),
    "spec nan": (["--compressors", "prune.unstructured:sparsity=nan"],
                 "compressors.prune.unstructured.sparsity must be finite: inf and nan are not accepted, got [nan]"),
    "spec unknown parameter": (["--compressors", "quant.bits:bitz=4"],
                               "quant.bits: unknown parameter 'bitz' for quant.bits; accepted: bits, scheme"),
    "spec wrong type": (["--compressors", "quant.bits:bits=four"],
                        "quant.bits: bits must be one of 2, 3, 4, 6, 8; got 'four'"),
    "chain stage nan": (["--compressors", "chain:stages=prune.unstructured(sparsity=nan)+quant.bits(bits=4)"],
                        "chain: stage prune.unstructured: sparsity must be in [0, 1), got nan"),
}  # fmt: skip


@pytest.mark.parametrize(("flags", "line"), BAD_FLAGS.values(), ids=BAD_FLAGS.keys())
def test_bad_flags_exit_2_with_one_line_and_write_nothing(tmp_path: Path, flags: list[str], line: str) -> None:
    store = tmp_path / "results" / "bench.sqlite"
    given = {flag.split("=")[0] for flag in flags if flag.startswith("--")}
    small = [arg for flag, value in SMALL_FLAGS.items() if flag not in given for arg in (flag, value)]
    result = run_main(["run", *small, "--no-layers", *flags, "--store", str(store)])
    assert (result.code, result.err, result.out) == (2, f"error: {line}\n", "")
    assert not store.parent.exists()


def test_the_flag_path_builds_a_valid_config_from_good_values() -> None:
    args = build_parser().parse_args(
        [
            "run",
            "--models",
            "digits_cnn",
            "--compressors",
            "none",
            "--threads",
            "1",
            "--batch",
            "1,4096",
            "--budget",
            "86400",
            "--layer-sparsities",
            "0,0.5",
        ]
    )
    config = load_config(args.config, config_overrides(args))
    assert config.batch == (1, 4096) and config.timing.budget_s == 86400.0


def test_parse_compressor_spec_keeps_one_list_per_key() -> None:
    assert parse_compressor_spec("prune.unstructured:sparsity=0.5,0.9:execution=csr") == (
        "prune.unstructured", {"sparsity": [0.5, 0.9], "execution": ["csr"]},
    )  # fmt: skip
