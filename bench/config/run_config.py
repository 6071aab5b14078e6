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
from bench import engines
from bench.config.checks import (
    MAX_BATCH,
    MAX_FINETUNE_STEPS,
    MAX_SECONDS,
    MAX_THREADS,
    as_list,
    check_matrix_tree,
    check_section_types,
    check_threads_fit,
    is_integer,
    names,
    positive_ints,
    read_matrix_file,
)  # fmt: skip
from bench.config.limits import LimitsConfig
from bench.config.shards import Shard, parse_shard
from bench.errors import BenchError, require, unknown_name
from bench.models.assets import ModelAssets, model_assets
from bench.models.data import load_dataset
from bench.models.registry import list_models, resolve_model
from bench.models.training import recipe_steps
from bench.recovery.config import RecoveryConfig
from bench.store.artifacts import DEFAULT_CAP_BYTES
from bench.store.database import DEFAULT_STORE
from targets import TargetSpec
from targets.worker import TIMING_DEFAULTS, check_timing

__all__ = [
    "TimingConfig", "LayerSweep", "RecoveryConfig", "ArtifactsConfig", "LimitsConfig", "RunConfig", "load_config",
    "load_target_specs", "parse_compressor_spec", "DEFAULT_STORE",
]  # fmt: skip


# 10 TB: beyond it a cap is a typo.
MAX_CAP_MB = 10_000_000


@dataclass(frozen=True)
class TimingConfig:
    """The latency protocol's knobs, sent to the worker in each plan.

    Defaults and ranges are the worker's own (`targets.worker.TIMING_DEFAULTS` and `check_timing`), so a matrix
    that leaves a knob out and a pair that leaves it out mean the same, and the host refuses exactly what the
    worker would.
    """

    warmup_s: float = TIMING_DEFAULTS["warmup_s"]
    block_min_s: float = TIMING_DEFAULTS["block_min_s"]
    budget_s: float = TIMING_DEFAULTS["budget_s"]
    min_rounds: int = TIMING_DEFAULTS["min_rounds"]
    max_rounds: int = TIMING_DEFAULTS["max_rounds"]
    ci_rel: float = TIMING_DEFAULTS["ci_rel"]

    def __post_init__(self) -> None:
        try:
            check_timing(asdict(self))
        except ValueError as error:
            raise BenchError(str(error)) from None


@dataclass(frozen=True)
class LayerSweep:
    """The layer-level sweep: which models' GEMMs, at which sparsities, with what time budget per GEMM."""

    models: tuple[str, ...] = ("resnet18",)
    sparsities: tuple[float, ...] = (0.5, 0.7, 0.9, 0.95, 0.99)
    budget_s: float = 1.5

    def __post_init__(self) -> None:
        require(
            bool(self.sparsities) or not self.models,
            "layers.sparsities must not be empty while layers.models is not (--no-layers skips the sweep)",
        )
        for value in self.sparsities:
            require(0 <= value < 1, f"layers.sparsities must be in [0, 1), got {value}")
        require(
            0 < self.budget_s <= MAX_SECONDS,
            f"layers.budget_s must be in (0, {MAX_SECONDS:g}] seconds, got {self.budget_s}",
        )


@dataclass(frozen=True)
class ArtifactsConfig:
    """Whether a run keeps the files it timed beside its store (`bench.store.artifacts`), within `cap_mb`, so that
    `compare --remeasure` and the CI gate can time two runs' artifacts against each other later."""

    keep: bool = False
    cap_mb: int = DEFAULT_CAP_BYTES // 2**20

    def __post_init__(self) -> None:
        require(
            is_integer(self.cap_mb) and 1 <= self.cap_mb <= MAX_CAP_MB,
            f"artifacts.cap_mb must be an integer in 1..{MAX_CAP_MB} (MiB), got {self.cap_mb!r}",
        )

    @property
    def cap_bytes(self) -> int:
        return self.cap_mb * 2**20


@dataclass(frozen=True)
class RunConfig:
    """One validated matrix and where its results go.

    Attributes:
        compressors: every grid point, already validated by its compressor's config class.
        targets: the names of the targets to measure on, in order.
        engines: the inference engines each model cell is timed with (see `bench.engines`), in order.
        target_specs: every target the config defines (the built-in ones and its ``[targets.NAME]`` tables).
        store: the SQLite file; reports land in `store.parent / "runs"`, trained models in `store.parent / "cache"`.
        shard: the share of the matrix this run measures (see `bench.config.shards`); None measures all of it.
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
    target_specs: Mapping[str, TargetSpec] = field(default_factory=lambda: dict(targets.BUILTIN_TARGETS))
    store: Path = DEFAULT_STORE
    force: bool = False
    shard: Shard | None = None
    engines: tuple[str, ...] = (engines.DEFAULT_ENGINE,)
    artifacts: ArtifactsConfig = ArtifactsConfig()
    limits: LimitsConfig = LimitsConfig()
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
            "engines": list(self.engines),
            "threads": list(self.threads),
            "batch": list(self.batch),
            "finetune_steps": self.finetune_steps,
            "recovery": self.recovery.to_json(),
            "timing": {f.name: getattr(self.timing, f.name) for f in fields(self.timing)},
            "layers": {f.name: getattr(self.layers, f.name) for f in fields(self.layers)},
            "limits": asdict(self.limits),
            "assets": {
                model: {k: str(v) for k, v in asdict(a).items() if v is not None} for model, a in self.assets.items()
            },
            "store": str(self.store),
        }


def parse_compressor_spec(spec: str) -> tuple[str, dict[str, list[Any]]]:
    """Parse `NAME[:KEY=V1,V2[:KEY=V...]]`, e.g. `prune.unstructured:sparsity=0.9,0.95:execution=csr`.

    Raises:
        BenchError: no name, an assignment without a key or a value, an empty value, or a key given twice (the
            second would silently replace the first).
    """
    name, *assignments = spec.split(":")
    require(name != "", f"--compressors: expected NAME[:KEY=V1,V2[:KEY=V...]], got '{spec}'")
    grid: dict[str, list[Any]] = {}
    for assignment in assignments:
        key, sep, values = assignment.partition("=")
        require(bool(sep and key and values), f"--compressors: expected KEY=V1,V2 after '{name}:', got '{assignment}'")
        require(
            key not in grid, f"--compressors: '{key}' is given twice in '{spec}' (list its values once: {key}=V1,V2)"
        )
        items = values.split(",")
        require(all(items), f"--compressors: empty value in '{assignment}' (expected {key}=V1,V2)")
        grid[key] = [compressors.parse_value(v) for v in items]
    return name, grid


def _unknown_compressor(name: str, grids: Any) -> BenchError:
    """The error for an unregistered name; `[compressors.prune] unstructured = ...` is an unquoted dotted name."""
    dotted = [f"{name}.{key}" for key in (grids if isinstance(grids, Mapping) else ())]
    quoted = next((full for full in dotted if full in compressors.names()), None)
    also = f'or, for {quoted}, quote the dotted name: [compressors."{quoted}"]' if quoted else ""
    return unknown_name("compressor", name, compressors.names(), also=also)


def _expand_compressors(table: Mapping[str, Any]) -> tuple[compressors.CompressorConfig, ...]:
    configs: list[compressors.CompressorConfig] = []
    for name, grids in table.items():
        if name not in compressors.names():
            raise _unknown_compressor(name, grids)
        cls = compressors.get(name)
        # A compressor named twice (repeated on the command line, or an array of tables) has several grids.
        for grid in grids if isinstance(grids, list) else [grids]:
            # Execution-only fields vary fastest, so cells sharing one compressed model run back to back.
            keys = sorted(grid, key=lambda key: (key in cls.execution_fields, key))
            for values in itertools.product(*(as_list(grid[key]) for key in keys)):
                try:
                    config = cls.from_dict(dict(zip(keys, values, strict=True)))
                except (ValueError, TypeError) as error:
                    raise BenchError(f"{name}: {error}") from error
                if config not in configs:
                    configs.append(config)
    require(bool(configs), "compressors: the matrix needs at least one compressor")
    return tuple(configs)


def _check_applicable(
    models: Sequence[str],
    configs: Sequence[compressors.CompressorConfig],
    steps: int,
    assets: Mapping[str, ModelAssets],
) -> None:
    """Ask every compressor whether it applies to the run's models (a rank a layer cannot have, BatchNorm scales
    of a model without BatchNorm), and one that trains whether it can train there (a rewind point its reference's
    training never reached, initial weights the suite never stored).

    A compressor that fits none of them makes a matrix that measures nothing of it: one line, before the run. One
    that fits some is measured on those, and its cells of the others are skipped with the reason (see
    `bench.run.cells.measure_model_cell`), so one architecture does not stop a run over many.
    """
    misfits: list[list[tuple[str, str]]] = [[] for _ in configs]
    for model_name in models:
        model = resolve_model(model_name).build()  # one at a time: VGG-sized models stay out of memory together
        for config, problems in zip(configs, misfits, strict=True):
            try:
                config.check(model)
                if config.trains:
                    config.check_training(_training_facts(model_name, steps, assets.get(model_name, ModelAssets())))
            except ValueError as error:
                problems.append((model_name, str(error)))
    for config, problems in zip(configs, misfits, strict=True):
        if problems and len(problems) == len(models):
            model_name, reason = problems[0]
            raise BenchError(f"{config.name} on {model_name}: {reason}")


def _training_facts(model: str, steps: int, assets: ModelAssets) -> compressors.TrainingFacts:
    """What a compressor that trains is told of `model` before the run: see `bench.models.references.Reference`."""
    spec = resolve_model(model)
    if spec.dataset is None or assets.data is not None:
        raise ValueError(
            "it trains as it compresses, on the model's training split: only models with a bundled data set have one"
            f" ({', '.join(m.name for m in list_models() if m.dataset is not None)})"
        )
    suite_trained = assets.weights is None and spec.recipe is not None
    reference_steps = (
        recipe_steps(spec.recipe, load_dataset(spec.dataset).train) if suite_trained and spec.recipe else None
    )
    return compressors.TrainingFacts(steps=steps, reference_steps=reference_steps, initial_weights=suite_trained)


def load_target_specs(config_file: Path | None) -> dict[str, TargetSpec]:
    """Every target a run with `config_file` knows: the built-in ones and the file's `[targets.NAME]` tables.

    Raises:
        BenchError: an unreadable file or a bad target table, in one line.
    """
    if config_file is None:
        return dict(targets.BUILTIN_TARGETS)
    user = read_matrix_file(config_file)
    check_matrix_tree(user, config_file, _SECTION_TYPES)
    return _target_specs(user, config_file)


def _target_specs(user: Mapping[str, Any], source: Path | None) -> dict[str, TargetSpec]:
    """The built-in targets and the file's ``[targets.NAME]`` tables, each checked now so that a missing host is
    an error before any cell."""
    specs = dict(targets.BUILTIN_TARGETS)
    tables = user.get("targets")
    if not isinstance(tables, Mapping):
        return specs  # a list of names, or nothing: it selects, it defines nothing
    for name, table in tables.items():
        require(isinstance(table, Mapping), f"targets.{name} must be a table of settings, got {table!r} (in {source})")
        try:
            specs[name] = targets.spec_from_table(name, table)
        except targets.SettingsError as error:
            raise BenchError(f"{error} (in {source})") from None
    return specs


_SECTION_TYPES: dict[str, type] = {
    "recovery": RecoveryConfig, "timing": TimingConfig, "layers": LayerSweep, "artifacts": ArtifactsConfig,
    "limits": LimitsConfig,
}  # fmt: skip


def _section(cls: type, name: str, table: Mapping[str, Any]) -> Any:
    return cls(**check_section_types(cls, name, table))


def _default_table() -> dict[str, Any]:
    return tomllib.loads(files("bench.config").joinpath("default.toml").read_text())


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if key in _SECTION_TYPES:
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = value
    return merged


def load_config(config_file: Path | None = None, overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """Build the run's configuration: defaults, then `config_file`, then command-line `overrides`.

    The file and the overrides are each checked for shape and types first, so a wrong value in the file is an
    error even where a flag replaces it; ranges, names and paths are checked once, on the merged table.

    Args:
        config_file: a TOML matrix file, or None for the default matrix alone.
        overrides: keys of the TOML schema (plus `store`, `force` and `shard`) given on the command line.

    Raises:
        BenchError: anything invalid, named in one line.
    """
    table = _default_table()
    specs = dict(targets.BUILTIN_TARGETS)
    if config_file is not None:
        user = read_matrix_file(config_file)
        check_matrix_tree(user, config_file, _SECTION_TYPES)
        specs = _target_specs(user, config_file)
        if isinstance(user.get("targets"), Mapping):
            user = {**user, "targets": list(user["targets"])}  # a file that defines targets measures on them
        table = _merge(table, user)
    overrides = dict(overrides or {})
    store = Path(overrides.pop("store", DEFAULT_STORE))
    force = bool(overrides.pop("force", False))
    shard = overrides.pop("shard", None)
    shard = parse_shard(shard) if isinstance(shard, str) else shard
    check_matrix_tree(overrides, None, _SECTION_TYPES)
    table = _merge(table, overrides)

    models = names("models", as_list(table["models"]))
    for model in models:
        resolve_model(model)
    target_names = names("targets", as_list(table["targets"]))
    for target in target_names:
        if target not in specs:
            raise unknown_name("target", target, specs, also="or one defined as [targets.NAME] in a --config file")
    engine_names = names("engines", as_list(table["engines"]))
    engines.check_engines(engine_names)
    threads = positive_ints("threads", as_list(table["threads"]), MAX_THREADS)
    check_threads_fit(threads, target_names, specs)
    steps = table["finetune_steps"]
    require(
        is_integer(steps) and 0 <= steps <= MAX_FINETUNE_STEPS,
        f"finetune_steps must be an integer in 0..{MAX_FINETUNE_STEPS}, got {steps!r}",
    )
    batch = positive_ints("batch", as_list(table["batch"]), MAX_BATCH)
    recovery = _section(RecoveryConfig, "recovery", table.get("recovery", {}))
    timing = _section(TimingConfig, "timing", table.get("timing", {}))
    layers = _section(LayerSweep, "layers", table.get("layers", {}))
    kept = _section(ArtifactsConfig, "artifacts", table.get("artifacts", {}))
    limits = _section(LimitsConfig, "limits", table.get("limits", {}))
    for model in layers.models:
        resolve_model(model)
    # Last, as they build models: compressors asked whether they apply, then the user's weights and images.
    configs = _expand_compressors(table["compressors"])
    assets = model_assets(models, table.get("weights", {}), table.get("data", {}))
    _check_applicable(models, configs, steps, assets)
    return RunConfig(
        models=models,
        compressors=configs,
        targets=target_names,
        threads=threads,
        batch=batch,
        finetune_steps=steps,
        recovery=recovery,
        timing=timing,
        layers=layers,
        assets=assets,
        target_specs=specs,
        store=store,
        force=force,
        shard=shard,
        engines=engine_names,
        artifacts=kept,
        limits=limits,
    )
