"""Config: defaults, file and flag precedence, and one clear BenchError per bad input."""

from __future__ import annotations

import tomllib
from importlib.resources import files
from pathlib import Path

import pytest

import compressors
from bench.config.run_config import (
    DEFAULT_STORE,
    LayerSweep,
    RunConfig,
    TimingConfig,
    load_config,
    parse_compressor_spec,
)
from bench.errors import BenchError


def _default_toml() -> dict:
    return tomllib.loads(files("bench.config").joinpath("default.toml").read_text())


def test_defaults_match_default_toml() -> None:
    table = _default_toml()
    config = load_config()
    assert isinstance(config, RunConfig)
    assert config.models == tuple(table["models"])
    assert config.targets == tuple(table["targets"])
    assert config.threads == tuple(table["threads"])
    assert config.batch == tuple(table["batch"])
    assert config.finetune_steps == table["finetune_steps"]
    assert config.timing == TimingConfig(**table["timing"])
    assert config.layers == LayerSweep(
        models=tuple(table["layers"]["models"]),
        sparsities=tuple(table["layers"]["sparsities"]),
        budget_s=table["layers"]["budget_s"],
    )
    assert config.store == DEFAULT_STORE
    assert config.force is False


def test_default_compressor_grid_is_expanded_to_validated_configs() -> None:
    table = _default_toml()["compressors"]
    config = load_config()
    for item in config.compressors:
        assert isinstance(item, compressors.get(item.name))
    names = [c.name for c in config.compressors]
    unstructured = table["prune.unstructured"]
    assert names.count("none") == 1
    scopes = unstructured.get("scope", "global")
    scopes = scopes if isinstance(scopes, list) else [scopes]
    assert names.count("prune.unstructured") == len(unstructured["sparsity"]) * len(unstructured["execution"]) * len(
        scopes
    )
    assert names.count("prune.channel") == len(table["prune.channel"]["macs_removed"])
    points = {(c.sparsity, c.execution, c.scope) for c in config.compressors if c.name == "prune.unstructured"}
    assert points == {
        (s, e, scope) for s in unstructured["sparsity"] for e in unstructured["execution"] for scope in scopes
    }
    assert sorted(c.macs_removed for c in config.compressors if c.name == "prune.channel") == sorted(
        table["prune.channel"]["macs_removed"]
    )


def test_file_overrides_key_by_key(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(
        'models = ["digits_cnn"]\nthreads = [1, 2]\n[timing]\nbudget_s = 0.5\n[layers]\nsparsities = [0.9]\n'
    )
    default = load_config()
    config = load_config(path)
    assert config.models == ("digits_cnn",)
    assert config.threads == (1, 2)
    assert config.timing.budget_s == 0.5
    # keys the file does not name keep their defaults, also inside [timing] and [layers]
    assert config.timing.min_rounds == default.timing.min_rounds
    assert config.timing.warmup_s == default.timing.warmup_s
    assert config.layers.sparsities == (0.9,)
    assert config.layers.models == default.layers.models
    assert config.batch == default.batch
    assert config.compressors == default.compressors


def test_cli_overrides_beat_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('models = ["mnist_cnn"]\nfinetune_steps = 7\n[timing]\nbudget_s = 0.5\nmin_rounds = 3\n')
    store = tmp_path / "s" / "b.sqlite"
    config = load_config(path, {"models": ["digits_cnn"], "timing": {"budget_s": 0.2}, "store": store, "force": True})
    assert config.models == ("digits_cnn",)
    assert config.timing.budget_s == 0.2
    assert config.timing.min_rounds == 3  # from the file, not touched by the flag
    assert config.finetune_steps == 7
    assert config.store == store
    assert config.force is True
    assert config.reports_dir == store.parent / "runs"
    assert config.cache_dir == store.parent / "cache"


def test_compressor_table_is_replaced_as_a_whole(tmp_path: Path) -> None:
    config = load_config(None, {"compressors": {"prune.channel": {"macs_removed": [0.3]}}})
    assert [(c.name, c.macs_removed) for c in config.compressors] == [("prune.channel", 0.3)]


def test_parse_compressor_spec() -> None:
    assert parse_compressor_spec("none") == ("none", {})
    assert parse_compressor_spec("prune.unstructured:sparsity=0.9,0.95:execution=csr:scope=layer") == (
        "prune.unstructured",
        {"sparsity": [0.9, 0.95], "execution": ["csr"], "scope": ["layer"]},
    )
    name, grid = parse_compressor_spec("prune.channel:macs_removed=1")
    assert name == "prune.channel" and grid == {"macs_removed": [1]} and isinstance(grid["macs_removed"][0], int)


@pytest.mark.parametrize(
    "spec", ["prune.unstructured:sparsity", "prune.unstructured:=0.5", "prune.unstructured:sparsity="]
)
def test_parse_compressor_spec_rejects_malformed(spec: str) -> None:
    with pytest.raises(BenchError, match="expected KEY=V1,V2"):
        parse_compressor_spec(spec)


def test_to_json_round_trips_the_grid() -> None:
    config = load_config(None, {"models": ["digits_cnn"], "compressors": {"prune.unstructured": {"sparsity": [0.5]}}})
    data = config.to_json()
    assert data["models"] == ["digits_cnn"]
    assert data["compressors"] == [
        {"name": "prune.unstructured", "sparsity": 0.5, "scope": "global", "execution": "dense"}
    ]


BAD_OVERRIDES = {
    "unknown model": ({"models": ["resnt18"]}, ["unknown model 'resnt18'", "did you mean 'resnet18'", "digits_cnn"]),
    "unknown compressor": (
        {"compressors": {"prune.unstrctured": {}}},
        ["unknown compressor 'prune.unstrctured'", "prune.channel"],
    ),
    "unknown target": ({"targets": ["gpu9"]}, ["unknown target 'gpu9'", "cpu"]),
    "sparsity 1.5": ({"compressors": {"prune.unstructured": {"sparsity": [1.5]}}}, ["sparsity", "1.5"]),
    "sparsity -0.1": ({"compressors": {"prune.unstructured": {"sparsity": [-0.1]}}}, ["sparsity", "-0.1"]),
    "unknown execution": (
        {"compressors": {"prune.unstructured": {"execution": ["gpu"]}}},
        ["execution", "'gpu'", "csr"],
    ),
    "unknown parameter": ({"compressors": {"prune.unstructured": {"spars": [0.5]}}}, ["'spars'", "sparsity"]),
    "threads 0": ({"threads": [0]}, ["threads", "0"]),
    "batch x": ({"batch": ["x"]}, ["batch", "'x'"]),
    "finetune -1": ({"finetune_steps": -1}, ["finetune_steps", "-1"]),
    "layer sparsity 1.0": ({"layers": {"sparsities": [1.0]}}, ["layers.sparsities", "1.0"]),
}


@pytest.mark.parametrize("overrides, fragments", BAD_OVERRIDES.values(), ids=BAD_OVERRIDES.keys())
def test_bad_overrides_raise_bench_error_naming_field_and_value(overrides: dict, fragments: list[str]) -> None:
    with pytest.raises(BenchError) as info:
        load_config(None, overrides)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


BAD_FILES = {
    "bad syntax": ("models = [", ["not valid TOML"]),
    "unknown top-level key": ('modles = ["resnet18"]', ["unknown key 'modles'", "models"]),
    "unknown timing key": ("[timing]\nbudget = 1.0", ["unknown key 'timing.budget'", "budget_s"]),
    "wrong type in timing": ('[timing]\nbudget_s = "fast"', ["timing.budget_s", "'fast'"]),
    "float rounds": ("[timing]\nmin_rounds = 2.5", ["timing.min_rounds", "2.5"]),
    "max below min": ("[timing]\nmin_rounds = 10\nmax_rounds = 5", ["timing.max_rounds", "5"]),
    "unknown model in layers": ('[layers]\nmodels = ["resnet1"]', ["unknown model 'resnet1'"]),
    "text in layer sparsities": (
        '[layers]\nsparsities = ["a"]',
        ["layers.sparsities must be a list of numbers", "'a'"],
    ),
    "scalar layer sparsities": ("[layers]\nsparsities = 0.5", ["layers.sparsities must be a list", "0.5"]),
}


@pytest.mark.parametrize("text, fragments", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_files_raise_bench_error(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(BenchError) as info:
        load_config(path)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_bad_syntax_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("models = [")
    with pytest.raises(BenchError, match="bad.toml"):
        load_config(path)


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(BenchError) as info:
        load_config(path)
    assert "no such file" in str(info.value) and str(path) in str(info.value)


def test_a_compressor_named_twice_on_the_command_line_keeps_both_grids() -> None:
    overrides = {"compressors": {}}
    for spec in (
        "prune.unstructured:sparsity=0.5",
        "prune.unstructured:sparsity=0.9:execution=csr",
        "prune.unstructured:sparsity=0.5",
    ):
        name, grid = parse_compressor_spec(spec)
        overrides["compressors"].setdefault(name, []).append(grid)
    config = load_config(None, overrides)
    assert [(c.sparsity, c.execution) for c in config.compressors] == [(0.5, "dense"), (0.9, "csr")]
