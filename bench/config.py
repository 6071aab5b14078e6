"""TOML file + command-line flags -> one frozen, validated `RunConfig`.

Everything the user can get wrong is checked here, once, with a one-line `BenchError` naming the field, the
value and what is accepted. Nothing downstream reads argparse or the environment.
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from importlib.resources import files
from pathlib import Path
from typing import Any

import compressors
import targets
from bench.errors import BenchError, unknown_name
from bench.models import resolve_model
from bench.userdata import file_digest, folder_digest, open_folder

__all__ = [
    "TimingConfig", "LayerSweep", "RecoveryConfig", "ModelAssets", "RunConfig", "load_config", "load_target_specs",
    "parse_compressor_spec", "DEFAULT_STORE",
]  # fmt: skip

DEFAULT_STORE = Path("results") / "bench.sqlite"
_TOP_LEVEL_KEYS = {"models", "targets", "threads", "batch", "finetune_steps", "recovery", "compressors", "timing", "layers", "weights", "data"}


@dataclass(frozen=True)
class TimingConfig:
    """The latency protocol's knobs, sent to the worker in each plan."""

    warmup_s: float = 0.3
    block_min_s: float = 0.01
    budget_s: float = 6.0
    min_rounds: int = 6
    max_rounds: int = 400
    ci_rel: float = 0.02

    def __post_init__(self) -> None:
        for name in ("warmup_s", "block_min_s", "budget_s", "ci_rel"):
            _require(getattr(self, name) > 0, f"timing.{name} must be > 0, got {getattr(self, name)}")
        _require(self.min_rounds >= 2, f"timing.min_rounds must be >= 2, got {self.min_rounds}")
        _require(
            self.max_rounds >= self.min_rounds,
            f"timing.max_rounds must be >= timing.min_rounds ({self.min_rounds}), got {self.max_rounds}",
        )


@dataclass(frozen=True)
class LayerSweep:
    """The layer-level sweep: which models' GEMMs, at which sparsities, with what time budget per GEMM."""

    models: tuple[str, ...] = ("resnet18",)
    sparsities: tuple[float, ...] = (0.5, 0.7, 0.9, 0.95, 0.99)
    budget_s: float = 1.5

    def __post_init__(self) -> None:
        for value in self.sparsities:
            _require(0 <= value < 1, f"layers.sparsities must be in [0, 1), got {value}")
        _require(self.budget_s > 0, f"layers.budget_s must be > 0, got {self.budget_s}")


@dataclass(frozen=True)
class RecoveryConfig:
    """How accuracy is recovered in `finetune_steps` mini-batches: plain fine-tuning, or distillation from the
    uncompressed model (soft labels at temperature T, weighted by alpha against the hard labels)."""

    method: str = "finetune"
    temperature: float = 4.0
    alpha: float = 0.5

    def __post_init__(self) -> None:
        _require(self.method in ("finetune", "distill"), f"recovery.method must be one of finetune, distill; got {self.method!r}")
        _require(self.temperature > 0, f"recovery.temperature must be > 0, got {self.temperature}")
        _require(0 <= self.alpha <= 1, f"recovery.alpha must be in [0, 1], got {self.alpha}")

    def to_json(self) -> dict[str, Any]:
        """What identifies the recovery in a cell: temperature and alpha only matter for distillation."""
        if self.method == "finetune":
            return {"method": "finetune"}
        return {"method": "distill", "temperature": self.temperature, "alpha": self.alpha}


@dataclass(frozen=True)
class ModelAssets:
    """Weights and labelled images a user gave for one model, with digests that make them part of cell ids."""

    weights: Path | None = None
    data: Path | None = None
    weights_digest: str | None = None
    data_digest: str | None = None

    def digests(self) -> dict[str, str]:
        found = {"weights": self.weights_digest, "data": self.data_digest}
        return {key: value for key, value in found.items() if value is not None}


@dataclass(frozen=True)
class RunConfig:
    """One validated matrix and where its results go.

    Attributes:
        compressors: every grid point, already validated by its compressor's config class.
        targets: the names of the targets to measure on, in order.
        target_specs: every target the config defines (the built-in ones and its ``[targets.NAME]`` tables).
        store: the SQLite file; reports land in `store.parent / "runs"`, trained models in `store.parent / "cache"`.
    """

    models: tuple[str, ...]
    compressors: tuple[compressors.CompressorConfig, ...]
    targets: tuple[str, ...]
    threads: tuple[int, ...]
    batch: tuple[int, ...]
    finetune_steps: int
    recovery: RecoveryConfig
    timing: TimingConfig
    layers: LayerSweep
    assets: Mapping[str, ModelAssets] = field(default_factory=dict)
    target_specs: Mapping[str, targets.TargetSpec] = field(default_factory=lambda: dict(targets.BUILTIN_TARGETS))
    store: Path = DEFAULT_STORE
    force: bool = False
    reports_dir: Path = field(init=False)
    cache_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reports_dir", self.store.parent / "runs")
        object.__setattr__(self, "cache_dir", self.store.parent / "cache")

    def to_json(self) -> dict[str, Any]:
        """JSON-native description stored with the run."""
        return {
            "models": list(self.models),
            "compressors": [{"name": c.name, **c.to_dict()} for c in self.compressors],
            "targets": {name: self.target_specs[name].to_json() for name in self.targets},
            "threads": list(self.threads),
            "batch": list(self.batch),
            "finetune_steps": self.finetune_steps,
            "recovery": self.recovery.to_json(),
            "timing": {f.name: getattr(self.timing, f.name) for f in fields(self.timing)},
            "layers": {f.name: getattr(self.layers, f.name) for f in fields(self.layers)},
            "assets": {model: {k: str(v) for k, v in asdict(a).items() if v is not None} for model, a in self.assets.items()},
            "store": str(self.store),
        }


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BenchError(message)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def parse_compressor_spec(spec: str) -> tuple[str, dict[str, list[Any]]]:
    """Parse `NAME[:KEY=V1,V2[:KEY=V...]]`, e.g. `prune.unstructured:sparsity=0.9,0.95:execution=csr`."""
    name, *assignments = spec.split(":")
    grid: dict[str, list[Any]] = {}
    for assignment in assignments:
        key, sep, values = assignment.partition("=")
        _require(bool(sep and key and values), f"--compressors: expected KEY=V1,V2 after '{name}:', got '{assignment}'")
        grid[key] = [compressors.parse_value(v) for v in values.split(",")]
    return name, grid


def _expand_compressors(table: Mapping[str, Any]) -> tuple[compressors.CompressorConfig, ...]:
    configs: list[compressors.CompressorConfig] = []
    for name, grids in table.items():
        if name not in compressors.names():
            raise unknown_name("compressor", name, compressors.names())
        cls = compressors.get(name)
        # A compressor named twice (repeated on the command line, or an array of tables) has several grids.
        for grid in grids if isinstance(grids, list) else [grids]:
            _require(isinstance(grid, Mapping), f"compressors.{name} must be a table of parameters, got {grid!r}")
            # Execution-only fields vary fastest, so cells sharing one compressed model run back to back.
            keys = sorted(grid, key=lambda key: (key in cls.execution_fields, key))
            for values in itertools.product(*(_as_list(grid[key]) for key in keys)):
                try:
                    config = cls.from_dict(dict(zip(keys, values)))
                except (ValueError, TypeError) as error:
                    raise BenchError(f"{name}: {error}") from error
                if config not in configs:
                    configs.append(config)
    _require(bool(configs), "compressors: the matrix needs at least one compressor")
    return tuple(configs)


def _check_applicable(models: Sequence[str], configs: Sequence[compressors.CompressorConfig]) -> None:
    """Ask every compressor whether it applies to every model (e.g. a rank a layer cannot have)."""
    for model_name in models:
        model = resolve_model(model_name).build()
        for config in configs:
            try:
                config.check(model)
            except ValueError as error:
                raise BenchError(f"{config.name} on {model_name}: {error}") from None


def _positive_ints(name: str, values: Sequence[Any]) -> tuple[int, ...]:
    _require(len(values) > 0, f"{name} must not be empty")
    for value in values:
        _require(
            isinstance(value, int) and not isinstance(value, bool) and value >= 1,
            f"{name} must be integers >= 1, got {value!r}",
        )
    return tuple(values)


def load_target_specs(config_file: Path | None) -> dict[str, targets.TargetSpec]:
    """Every target a run with `config_file` knows: the built-in ones and the file's `[targets.NAME]` tables.

    Raises:
        BenchError: an unreadable file or a bad target table, in one line.
    """
    return _target_specs(_read_toml(config_file) if config_file is not None else {}, config_file)


def _target_specs(user: Mapping[str, Any], source: Path | None) -> dict[str, targets.TargetSpec]:
    """The built-in targets and the file's ``[targets.NAME]`` tables, each checked now so that a missing host is
    an error before any cell."""
    specs = dict(targets.BUILTIN_TARGETS)
    tables = user.get("targets")
    if not isinstance(tables, Mapping):
        return specs  # a list of names, or nothing: it selects, it defines nothing
    for name, table in tables.items():
        _require(isinstance(table, Mapping), f"targets.{name} in {source} must be a table of settings, got {table!r}")
        try:
            specs[name] = targets.spec_from_table(name, table)
        except targets.SettingsError as error:
            raise BenchError(f"{error} (in {source})") from None
    return specs


def _names(name: str, values: Sequence[Any]) -> tuple[str, ...]:
    _require(len(values) > 0, f"{name} must not be empty")
    for value in values:
        _require(isinstance(value, str), f"{name} must be names, got {value!r}")
    return tuple(dict.fromkeys(values))


def _section(cls: type, name: str, table: Mapping[str, Any]) -> Any:
    accepted = {f.name for f in fields(cls)}
    for key in table:
        if key not in accepted:
            raise BenchError(f"unknown key '{name}.{key}' (accepted: {', '.join(sorted(accepted))})")
    values = {key: tuple(v) if isinstance(v, list) else v for key, v in table.items()}
    for key, value in values.items():
        default = next(f.default for f in fields(cls) if f.name == key)
        expected = type(default)
        ok = _is_number(value) if expected is float else isinstance(value, expected) and not isinstance(value, bool)
        _require(ok, f"{name}.{key} must be {_KIND_NAMES[expected]}, got {value!r}")
        if expected is tuple:
            element = type(default[0])
            for item in value:
                _require(_is_number(item) if element is float else isinstance(item, element), f"{name}.{key} must be a list of {_PLURALS[element]}, got {item!r}")
    return cls(**values)


_KIND_NAMES = {float: "a number", int: "an integer", tuple: "a list", str: "a string"}
_PLURALS = {float: "numbers", int: "integers", str: "names"}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _assets(models: tuple[str, ...], weights: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, ModelAssets]:
    """Validate the user's weights files and image folders (which must exist) and digest them."""
    for flag, table in (("weights", weights), ("data", data)):
        for model, path in table.items():
            _require(model in models, f"--{flag}: model '{model}' is not in the run (models: {', '.join(models)})")
            _require(isinstance(path, (str, Path)), f"--{flag} {model}: expected a path, got {path!r}")
    assets = {}
    for model in sorted(set(weights) | set(data)):
        weights_path = Path(weights[model]) if model in weights else None
        data_path = Path(data[model]) if model in data else None
        if weights_path is not None and not weights_path.is_file():
            raise BenchError(f"--weights {model}: no such file: {weights_path}")
        if data_path is not None:
            spec = resolve_model(model)
            _require(
                weights_path is not None or spec.dataset is not None,
                f"--data {model}: needs --weights {model}=PATH too (no accuracy is reported for random weights)",
            )
            open_folder(data_path, spec.input_shape, model)
        assets[model] = ModelAssets(
            weights=weights_path,
            data=data_path,
            weights_digest=file_digest(weights_path) if weights_path else None,
            data_digest=folder_digest(data_path) if data_path else None,
        )
    return assets


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise BenchError(f"--config: no such file: {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise BenchError(f"--config: {path} is not valid TOML: {error}") from None
    except OSError as error:
        raise BenchError(f"--config: cannot read {path}: {error.strerror}") from None


def _default_table() -> dict[str, Any]:
    return tomllib.loads(files("bench").joinpath("default.toml").read_text())


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if key in ("timing", "layers", "recovery") and isinstance(value, Mapping):
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = value
    return merged


def load_config(config_file: Path | None = None, overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """Build the run's configuration: defaults, then `config_file`, then command-line `overrides`.

    Args:
        config_file: a TOML matrix file, or None for the default matrix alone.
        overrides: keys of the TOML schema (plus `store` and `force`) given on the command line.

    Raises:
        BenchError: anything invalid, named in one line.
    """
    table = _default_table()
    specs = dict(targets.BUILTIN_TARGETS)
    if config_file is not None:
        user = _read_toml(config_file)
        specs = _target_specs(user, config_file)
        for key in user:
            if key not in _TOP_LEVEL_KEYS:
                raise BenchError(f"unknown key '{key}' in {config_file} (accepted: {', '.join(sorted(_TOP_LEVEL_KEYS))})")
        if isinstance(user.get("targets"), Mapping):
            user = {**user, "targets": list(user["targets"])}  # a file that defines targets measures on them
        table = _merge(table, user)
    overrides = dict(overrides or {})
    store = Path(overrides.pop("store", DEFAULT_STORE))
    force = bool(overrides.pop("force", False))
    table = _merge(table, overrides)

    models = _names("models", _as_list(table["models"]))
    for model in models:
        resolve_model(model)
    target_names = _names("targets", _as_list(table["targets"]))
    for target in target_names:
        if target not in specs:
            raise unknown_name("target", target, specs, also="or one defined as [targets.NAME] in a --config file")
    steps = table["finetune_steps"]
    _require(isinstance(steps, int) and not isinstance(steps, bool) and steps >= 0, f"finetune_steps must be an integer >= 0, got {steps!r}")
    layers = _section(LayerSweep, "layers", table.get("layers", {}))
    for model in layers.models:
        resolve_model(model)
    configs = _expand_compressors(table["compressors"])
    _check_applicable(models, configs)
    return RunConfig(
        models=models,
        compressors=configs,
        targets=target_names,
        threads=_positive_ints("threads", _as_list(table["threads"])),
        batch=_positive_ints("batch", _as_list(table["batch"])),
        finetune_steps=steps,
        recovery=_section(RecoveryConfig, "recovery", table.get("recovery", {})),
        timing=_section(TimingConfig, "timing", table.get("timing", {})),
        layers=layers,
        assets=_assets(models, table.get("weights", {}), table.get("data", {})),
        target_specs=specs,
        store=store,
        force=force,
    )
