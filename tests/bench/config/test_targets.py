"""Targets in the matrix file: [targets.NAME] tables, their selection by --targets, and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.config.run_config import load_config, load_target_specs
from bench.errors import BenchError
from targets import BUILTIN_TARGETS, TargetSpec

PI = '[targets.pi4]\nkind = "ssh"\nhost = "pi4.local"\nuser = "pi"\npython = "/home/pi/venv/bin/python"\n'


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "matrix.toml"
    path.write_text(text)
    return path


def test_a_file_that_defines_targets_measures_on_them(tmp_path: Path) -> None:
    config = load_config(_file(tmp_path, PI + "[targets.cpu]\ncooldown_s = 1\n"))
    assert config.targets == ("pi4", "cpu")
    assert config.target_specs["pi4"] == TargetSpec(
        "pi4", "ssh", {"host": "pi4.local", "user": "pi", "python": "/home/pi/venv/bin/python"}
    )
    assert config.target_specs["cpu"] == TargetSpec("cpu", "cpu", {"cooldown_s": 1})
    assert config.to_json()["targets"] == {
        "pi4": {"kind": "ssh", "host": "pi4.local", "user": "pi", "python": "/home/pi/venv/bin/python"},
        "cpu": {"kind": "cpu", "cooldown_s": 1},
    }


def test_flag_picks_among_builtin_and_defined_targets(tmp_path: Path) -> None:
    config = load_config(_file(tmp_path, PI), {"targets": ["cpu", "cuda", "pi4"]})
    assert config.targets == ("cpu", "cuda", "pi4")
    assert config.target_specs["cuda"] == BUILTIN_TARGETS["cuda"]


def test_a_list_of_names_still_selects_builtins(tmp_path: Path) -> None:
    assert load_config(_file(tmp_path, 'targets = ["cuda"]\n')).targets == ("cuda",)
    assert load_config().targets == ("cpu",)


def test_a_defined_target_is_unknown_without_its_file() -> None:
    with pytest.raises(
        BenchError,
        match=r"unknown target 'pi4' \(valid: cpu, cuda, or one defined as \[targets.NAME\] in a --config file\)",
    ):
        load_config(None, {"targets": ["cpu", "pi4"]})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[targets.pi4]\nkind = "ssh"\n', r"^\[targets.pi4\]: 'host' is required \(in .*matrix.toml\)$"),
        ('[targets.pi4]\nkind = "ssh"\nhost = "pi4.local"\nprot = 22\n', r"unknown key 'prot'"),
        (
            '[targets]\npi4 = "pi4.local"\n',
            r"targets.pi4 must be a table of settings, got 'pi4.local' \(in .*matrix.toml\)",
        ),
        (
            "[targets.cpu]\nthreads = 2\n",
            r"^\[targets.cpu\]: unknown key 'threads' "
            r"\(accepted: cooldown_below_c, cooldown_s, python, throttle_temp_c, timeout_margin_s\)",
        ),
    ],
)
def test_bad_target_tables_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(BenchError, match=message):
        load_config(path)
    with pytest.raises(BenchError, match=message):
        load_target_specs(path)
