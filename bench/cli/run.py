"""`python -m bench run` and `python -m bench study NAME`: measure a matrix, print its summary, write its report.

Both verbs take the same matrix flags; a study is the matrix file `studies/NAME.toml`, which the flags override as
they override a `--config` file. `measure_matrix` is the work itself, which `ci shard` calls too.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench.cli.support import Parser, Verbs, host_torch, readable, store_flag, wide_flag
from bench.config.shards import parse_shard
from bench.config.studies import STUDIES_DIR, study_file, study_names
from bench.errors import BenchError

__all__ = ["register", "measure_matrix", "config_overrides", "list_of"]

_SOME_CELLS_FAILED = 1
"""The exit status of a finished run in which some cells failed (they are stored and reported as failed)."""


_NOUNS = {int: "integers", float: "numbers", str: "names"}


def _fits(kind: type, value: Any) -> bool:
    from bench.config.checks import is_integer, is_number  # the config's own checks, imported when a flag is read

    if kind is int:
        return is_integer(value)
    if kind is float:
        return is_number(value)  # 0 is a number here: `--layer-sparsities 0,0.5`
    return isinstance(value, str)


def list_of(kind: type, flag: str) -> Callable[[str], list[Any]]:
    """A comma-separated list of `kind`; an empty item (`1,,2`) is a typo, and inf or nan measure nothing."""
    noun = _NOUNS[kind]

    def parse(text: str) -> list[Any]:
        from compressors import parse_value  # a flag's values read as a config file's do

        items = text.split(",")
        values = [parse_value(item) for item in items]
        if not (all(items) and all(_fits(kind, value) for value in values)):
            raise BenchError(f"{flag} expects a comma-separated list of {noun}, got '{text}'")
        return [float(value) for value in values] if kind is float else values

    return parse


def _number(flag: str, unit: str) -> Callable[[str], float]:
    """A finite number of `unit` (seconds, GB); its range is the config's to check."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise BenchError(f"{flag} expects a finite number of {unit}, got '{text}'")
        return value

    return parse


def _model_path(flag: str) -> Callable[[str], tuple[str, str]]:
    def parse(text: str) -> tuple[str, str]:
        model, sep, path = text.partition("=")
        if not (sep and model and path):
            raise BenchError(f"{flag} expects MODEL=PATH, got '{text}'")
        return model, path

    return parse


def register(verbs: Verbs) -> None:
    """Add the `run` and `study` verbs to the CLI's subparsers."""
    verbs.add_parser(
        "run", help="measure a matrix of models x compressors x targets (default: offline CPU matrix)",
        arguments=_run_arguments,
    )  # fmt: skip
    verbs.add_parser(
        "study", help="run a study: the matrix file studies/NAME.toml (flags override it as they do a --config file)",
        arguments=_study_arguments,
    )  # fmt: skip


def _run_arguments(run: Parser) -> None:
    run.add_argument("--config", type=Path, help="TOML matrix file (keys as in bench/config/default.toml)")
    _matrix_flags(run)
    store_flag(run)
    run.set_defaults(handler=_run)


def _study_arguments(study: Parser) -> None:
    study.add_argument("name", help=f"a study of {STUDIES_DIR}: {', '.join(study_names()) or '(none found)'}")
    _matrix_flags(study)
    store_flag(study)
    study.set_defaults(handler=_study)


def _matrix_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that shape a matrix, shared by `run` and `study` (and `--wide`, how its summary prints)."""
    from bench.recovery.methods import RECOVERY_METHODS  # needs torch: built only when `run` or `study` parses

    wide_flag(parser)
    parser.add_argument("--models", type=list_of(str, "--models"), help="comma-separated model names")
    parser.add_argument(
        "--compressors", nargs="+", metavar="SPEC",
        help="NAME[:KEY=V1,V2[:KEY=V...]], e.g. prune.unstructured:sparsity=0.9,0.95:execution=csr prune.channel",
    )  # fmt: skip
    parser.add_argument("--targets", type=list_of(str, "--targets"), help="comma-separated target names")
    parser.add_argument(
        "--engines", type=list_of(str, "--engines"), help="inference engines, e.g. torchscript,onnxruntime"
    )
    parser.add_argument("--threads", type=list_of(int, "--threads"), help="thread counts to measure, e.g. 1,2")
    parser.add_argument("--batch", type=list_of(int, "--batch"), help="batch sizes to measure, e.g. 1,8")
    parser.add_argument(
        "--finetune-steps", type=int, help="training mini-batches after compression (models the suite trains)"
    )
    parser.add_argument(
        "--recovery", type=list_of(str, "--recovery"), metavar="METHODS",
        help=f"how the fine-tuning steps recover accuracy, an axis: {', '.join(RECOVERY_METHODS)}",
    )  # fmt: skip
    parser.add_argument("--seeds", type=list_of(int, "--seeds"), help="training seeds, an axis, e.g. 0,1,2")
    parser.add_argument("--budget", type=_number("--budget", "seconds"), help="timing budget per cell in seconds")
    parser.add_argument(
        "--layer-sparsities", type=list_of(float, "--layer-sparsities"), help="sparsities of the layer-level sweep"
    )
    parser.add_argument("--no-layers", action="store_true", help="skip the layer-level sweep")
    parser.add_argument(
        "--weights",
        action="append",
        type=_model_path("--weights"),
        metavar="MODEL=PATH",
        help="state_dict file for a model (repeatable)",
    )
    parser.add_argument(
        "--data",
        action="append",
        type=_model_path("--data"),
        metavar="MODEL=PATH",
        help="image folder (ROOT/CLASS/IMAGE) to measure a model's top-1 on (repeatable)",
    )
    parser.add_argument("--force", action="store_true", help="measure again cells already in the store")
    parser.add_argument(
        "--keep-artifacts", action="store_true",
        help="keep the timed artifacts beside the store (artifacts/), so `compare --remeasure` can time them again",
    )  # fmt: skip
    parser.add_argument(
        "--cell-memory", type=_number("--cell-memory", "GB"), metavar="GB",
        help="resident memory one cell's host work may use before it is stopped and the cell failed (default: half"
        " of this machine's)",
    )  # fmt: skip
    parser.add_argument(
        "--cell-timeout", type=_number("--cell-timeout", "seconds"), metavar="SECONDS",
        help="seconds one step of a cell's host work (compress, recover, export, evaluate) may take before it is"
        " stopped and the cell failed (default: 1800)",
    )  # fmt: skip
    parser.add_argument(
        "--shard", type=parse_shard, metavar="K/N",
        help="measure only shard K of N (each runner of N picks its own; `merge` reassembles the matrix)",
    )  # fmt: skip


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The matrix flags of `run` or `study` as the overrides `load_config` lays over the matrix file."""
    from bench.config.run_config import parse_compressor_spec

    overrides: dict[str, Any] = {"store": args.store, "force": args.force, "shard": args.shard}
    for key in ("models", "targets", "engines", "threads", "batch"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.compressors:
        grids: dict[str, list[dict[str, list[Any]]]] = {}
        for spec in args.compressors:
            name, grid = parse_compressor_spec(spec)
            grids.setdefault(name, []).append(grid)
        overrides["compressors"] = grids
    if args.finetune_steps is not None:
        overrides["finetune_steps"] = args.finetune_steps
    recovery = {"method": args.recovery, "seeds": args.seeds}
    if any(value is not None for value in recovery.values()):
        overrides["recovery"] = {key: value for key, value in recovery.items() if value is not None}
    if args.budget is not None:
        overrides["timing"] = {"budget_s": args.budget}
    if args.keep_artifacts:
        overrides["artifacts"] = {"keep": True}
    limits = {"cell_memory_gb": args.cell_memory, "cell_timeout_s": args.cell_timeout}
    if any(value is not None for value in limits.values()):
        overrides["limits"] = {key: value for key, value in limits.items() if value is not None}
    for key in ("weights", "data"):
        if getattr(args, key):
            overrides[key] = dict(getattr(args, key))
    if args.no_layers:
        overrides["layers"] = {"models": []}
    elif args.layer_sparsities is not None:
        overrides["layers"] = {"sparsities": args.layer_sparsities}
    return overrides


def measure_matrix(config_file: Path | None, overrides: Mapping[str, Any], *, wide: bool = False) -> int:
    """Measure the matrix of `config_file` (the default matrix when None) with `overrides` laid over it.

    Prints the run's summary and writes its report beside the store, then one line of counts.

    Returns:
        0 when every cell ran (ok, skipped or reused) or the shard had no cells, 1 when some cells failed.
    """
    from bench.config.run_config import load_config
    from bench.report.write import write_report
    from bench.run.host_warnings import HostWarnings
    from bench.run.runner import run_matrix
    from bench.store.database import read_store

    host_torch()
    # Checking the matrix builds its models (does each compressor apply?): a library warns there too.
    told = HostWarnings(_say)
    with told.watching("checking the matrix"):
        config = load_config(config_file, dict(overrides))
    outcome = run_matrix(config, sys.stderr)
    outcome.warnings[:0] = told.texts()
    if outcome.run_id is None:
        return 0  # an empty shard: the runner said so
    with read_store(config.store) as store:
        records = readable(store, store.records(outcome.run_id))
        if records:
            run = store.run(outcome.run_id)
            write_report(run, records, config.reports_dir / outcome.run_id, sys.stdout, wide=wide)
    if outcome.warnings:  # each was one line above; the whole texts go beside the report
        texts = config.reports_dir / outcome.run_id / "warnings.txt"
        texts.parent.mkdir(parents=True, exist_ok=True)
        texts.write_text("\n\n".join(outcome.warnings) + "\n")
        sys.stdout.write(f"warnings: {len(outcome.warnings)} kind(s) from the host's work, in full: {texts}\n")
    counts = outcome.counts
    sys.stdout.write(
        f"run {outcome.run_id}: {counts['ok']} measured, {counts['reused']} reused from the store,"
        f" {counts['failed']} failed, {counts['skipped']} skipped\n"
    )
    return _SOME_CELLS_FAILED if counts["failed"] else 0


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")


def _run(args: argparse.Namespace) -> int:
    return measure_matrix(args.config, config_overrides(args), wide=args.wide)


def _study(args: argparse.Namespace) -> int:
    return measure_matrix(study_file(args.name), config_overrides(args), wide=args.wide)
