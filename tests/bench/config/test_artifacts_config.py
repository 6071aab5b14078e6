"""`[artifacts]`: whether a run keeps the files it timed beside its store, and within how many megabytes; from the
defaults, a matrix file and `--keep-artifacts`, each wrong value one BenchError line naming the key."""

from __future__ import annotations

import tomllib
from importlib.resources import files
from pathlib import Path

import pytest

from bench.cli.main import build_parser
from bench.cli.run import config_overrides
from bench.config.run_config import ArtifactsConfig, load_config
from bench.errors import BenchError
from bench.store.artifacts import DEFAULT_CAP_BYTES
from tests.bench.conftest import run_main

# The smallest matrix that loads fast: digits_cnn, one engine, no compression.
MATRIX = 'models = ["digits_cnn"]\nengines = ["torchscript"]\n[compressors]\nnone = {}\n'


def _matrix(tmp_path: Path, artifacts: str = "") -> Path:
    path = tmp_path / "matrix.toml"
    path.write_text(MATRIX + (f"[artifacts]\n{artifacts}\n" if artifacts else ""))
    return path


def _refused(path: Path | None, overrides: dict | None = None) -> str:
    with pytest.raises(BenchError) as caught:
        load_config(path, overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_matrix_file_sets_keep_and_the_cap(tmp_path: Path) -> None:
    config = load_config(_matrix(tmp_path, "keep = true\ncap_mb = 10"))
    assert config.artifacts == ArtifactsConfig(keep=True, cap_mb=10)
    assert config.artifacts.cap_bytes == 10 * 2**20


def test_by_default_a_run_keeps_nothing(tmp_path: Path) -> None:
    config = load_config(_matrix(tmp_path))
    assert config.artifacts.keep is False
    assert config.artifacts.cap_bytes == DEFAULT_CAP_BYTES
    default = tomllib.loads(files("bench.config").joinpath("default.toml").read_text())["artifacts"]
    assert ArtifactsConfig(**default) == ArtifactsConfig() == config.artifacts  # default.toml and the class agree


def test_one_key_of_the_section_leaves_the_other_at_its_default(tmp_path: Path) -> None:
    assert load_config(_matrix(tmp_path, "cap_mb = 7")).artifacts == ArtifactsConfig(keep=False, cap_mb=7)
    assert load_config(_matrix(tmp_path, "keep = true")).artifacts == ArtifactsConfig(keep=True)


@pytest.mark.parametrize("value", ['"yes"', "1", '"true"'])
def test_keep_must_be_true_or_false(tmp_path: Path, value: str) -> None:
    path = _matrix(tmp_path, f"keep = {value}")
    message = _refused(path)
    assert "artifacts.keep" in message and "true or false" in message
    assert str(path) in message


@pytest.mark.parametrize(
    ("value", "echoed"),
    [("0", "0"), ("-1", "-1"), ("1.5", "1.5"), ("true", "True"), ('"10"', "'10'"), ("10000001", "10000001")],
)
def test_cap_mb_must_be_a_positive_integer_of_megabytes(tmp_path: Path, value: str, echoed: str) -> None:
    message = _refused(_matrix(tmp_path, f"cap_mb = {value}"))
    assert "artifacts.cap_mb" in message
    assert f"got {echoed}" in message  # the value as given, in the repr the other checks echo


def test_an_unknown_key_of_the_section_is_refused_with_the_accepted_ones(tmp_path: Path) -> None:
    message = _refused(_matrix(tmp_path, 'where = "/mnt/big"'))
    assert "artifacts.where" in message
    assert "cap_mb" in message and "keep" in message


def test_the_section_must_be_a_table(tmp_path: Path) -> None:
    path = tmp_path / "matrix.toml"
    path.write_text("artifacts = true\n" + MATRIX)
    message = _refused(path)
    assert "artifacts" in message and "a table" in message


def test_overrides_set_keep_and_keep_the_files_cap(tmp_path: Path) -> None:
    path = _matrix(tmp_path, "cap_mb = 10")
    config = load_config(path, {"artifacts": {"keep": True}})
    assert config.artifacts == ArtifactsConfig(keep=True, cap_mb=10)  # the flag merges into the section


def test_overrides_are_checked_as_a_file_is() -> None:
    message = _refused(None, {"models": ["digits_cnn"], "artifacts": {"keep": "yes"}})
    assert "artifacts.keep" in message and "true or false" in message
    message = _refused(None, {"models": ["digits_cnn"], "artifacts": {"cap_mb": 0}})
    assert "artifacts.cap_mb" in message


def test_keep_artifacts_flag_sets_keep(tmp_path: Path) -> None:
    path = _matrix(tmp_path, "cap_mb = 10")
    store = tmp_path / "results" / "bench.sqlite"

    def config(*flags: str) -> ArtifactsConfig:
        args = build_parser().parse_args(["run", "--config", str(path), "--store", str(store), *flags])
        return load_config(args.config, config_overrides(args)).artifacts

    assert config("--keep-artifacts") == ArtifactsConfig(keep=True, cap_mb=10)
    assert config() == ArtifactsConfig(keep=False, cap_mb=10)


def test_without_the_flag_the_files_keep_stands(tmp_path: Path) -> None:
    path = _matrix(tmp_path, "keep = true")
    args = build_parser().parse_args(["run", "--config", str(path), "--store", str(tmp_path / "bench.sqlite")])
    assert load_config(args.config, config_overrides(args)).artifacts.keep is True


def test_a_study_takes_the_flag_too(tmp_path: Path) -> None:
    args = build_parser().parse_args(["study", "distill", "--keep-artifacts", "--store", str(tmp_path / "s.sqlite")])
    assert config_overrides(args)["artifacts"] == {"keep": True}


def test_the_command_line_refuses_a_wrong_keep_in_one_line_before_any_work(tmp_path: Path) -> None:
    path = _matrix(tmp_path, 'keep = "yes"')
    store = tmp_path / "results" / "bench.sqlite"
    result = run_main(["run", "--config", str(path), "--store", str(store), "--keep-artifacts"])
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "artifacts.keep" in lines[0] and "true or false" in lines[0]
    assert not store.parent.exists()  # no store, no artifacts folder
