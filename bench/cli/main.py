"""`python -m bench VERB`: parse flags, hand a validated config to the runner, print.

The verbs run, list, target, report and export are defined here; compare, history, merge and ci in modules of
their own (`VERB_MODULES`).

A `BenchError` anywhere becomes one line on stderr and exit status 2; Ctrl-C or SIGTERM stops after the cell in
progress is abandoned, with every finished cell already stored.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import torch
from tabulate import tabulate

import compressors
import targets
from bench.cli import ci as cli_ci
from bench.cli import compare as cli_compare
from bench.cli import history as cli_history
from bench.cli import merge as cli_merge
from bench.cli import report as cli_report
from bench.cli.report import wide_flag
from bench.cli.support import Parser, readable, store_flag, write_output
from bench.cli.target import check_target
from bench.config.checks import is_integer, is_number
from bench.config.run_config import load_config, load_target_specs, parse_compressor_spec
from bench.config.shards import parse_shard
from bench.config.studies import STUDIES_DIR, study_file, study_names
from bench.errors import BenchError, unknown_name
from bench.export.formats import FORMATS, export_run
from bench.models.registry import list_models
from bench.recovery.methods import RECOVERY_METHODS
from bench.report.write import write_report
from bench.run.runner import run_matrix
from bench.store.database import read_store

__all__ = ["main", "build_parser"]

# Verbs defined in modules of their own, each adding its parser with `register(verbs)`.
VERB_MODULES: tuple[Callable[[Any], None], ...] = (
    cli_report.register, cli_compare.register, cli_history.register, cli_merge.register, cli_ci.register,
)  # fmt: skip


_ITEM_CHECKS: dict[type, tuple[str, Callable[[Any], bool]]] = {
    int: ("integers", is_integer),
    float: ("numbers", is_number),  # 0 is a number here: `--layer-sparsities 0,0.5`
    str: ("names", lambda value: isinstance(value, str)),
}


def _list_of(kind: type, flag: str) -> Callable[[str], list[Any]]:
    """A comma-separated list of `kind`; an empty item (`1,,2`) is a typo, and inf or nan measure nothing."""
    noun, fits = _ITEM_CHECKS[kind]

    def parse(text: str) -> list[Any]:
        items = text.split(",")
        values = [compressors.parse_value(item) for item in items]
        if not (all(items) and all(fits(value) for value in values)):
            raise BenchError(f"{flag} expects a comma-separated list of {noun}, got '{text}'")
        return [float(value) for value in values] if kind is float else values

    return parse


def _seconds(flag: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise BenchError(f"{flag} expects a finite number of seconds, got '{text}'")
        return value

    return parse


def _model_path(flag: str):
    def parse(text: str) -> tuple[str, str]:
        model, sep, path = text.partition("=")
        if not (sep and model and path):
            raise BenchError(f"{flag} expects MODEL=PATH, got '{text}'")
        return model, path

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m bench", description="Hardware-aware benchmarks of neural-network compression.")
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=Parser)

    run = verbs.add_parser(
        "run", help="measure a matrix of models x compressors x targets (default: offline CPU matrix)"
    )
    run.add_argument("--config", type=Path, help="TOML matrix file (keys as in bench/config/default.toml)")
    _matrix_flags(run)
    store_flag(run)
    run.set_defaults(handler=_run)

    study = verbs.add_parser(
        "study", help="run a study: the matrix file studies/NAME.toml (flags override it as they do a --config file)"
    )
    study.add_argument("name", help=f"a study of {STUDIES_DIR}: {', '.join(study_names()) or '(none found)'}")
    _matrix_flags(study)
    store_flag(study)
    study.set_defaults(handler=_study)

    listing = verbs.add_parser("list", help="show the models, compressors, targets or stored runs")
    listing.add_argument("what", choices=["models", "compressors", "targets", "runs"])
    listing.add_argument("--config", type=Path, help="TOML file whose [targets.NAME] tables `list targets` shows too")
    store_flag(listing)
    listing.set_defaults(handler=_list)

    target = verbs.add_parser("target", help="inspect a target")
    target_verbs = target.add_subparsers(dest="target_verb", required=True, parser_class=Parser)
    check = target_verbs.add_parser("check", help="connect, describe the machine, run a tiny model there")
    check.add_argument("name", help="a built-in target (cpu, cuda) or one defined as [targets.NAME] in --config")
    check.add_argument("--config", type=Path, help="TOML file with [targets.NAME] tables")
    check.set_defaults(handler=_target_check)

    export = verbs.add_parser("export", help="write a stored run's records as CSV, JSON or pytest-benchmark JSON")
    export.add_argument("run_id", nargs="?", help="run id (default: the newest)")
    export.add_argument("--format", choices=FORMATS, default="csv")
    export.add_argument("--output", type=Path, help="file to write (default: stdout)")
    store_flag(export)
    export.set_defaults(handler=_export)
    for register in VERB_MODULES:
        register(verbs)
    return parser


def _matrix_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that shape a matrix, shared by `run` and `study` (and `--wide`, how its summary prints)."""
    wide_flag(parser)
    parser.add_argument("--models", type=_list_of(str, "--models"), help="comma-separated model names")
    parser.add_argument(
        "--compressors", nargs="+", metavar="SPEC",
        help="NAME[:KEY=V1,V2[:KEY=V...]], e.g. prune.unstructured:sparsity=0.9,0.95:execution=csr prune.channel",
    )  # fmt: skip
    parser.add_argument("--targets", type=_list_of(str, "--targets"), help="comma-separated target names")
    parser.add_argument(
        "--engines", type=_list_of(str, "--engines"), help="inference engines, e.g. torchscript,onnxruntime"
    )
    parser.add_argument("--threads", type=_list_of(int, "--threads"), help="thread counts to measure, e.g. 1,2")
    parser.add_argument("--batch", type=_list_of(int, "--batch"), help="batch sizes to measure, e.g. 1,8")
    parser.add_argument(
        "--finetune-steps", type=int, help="training mini-batches after compression (models the suite trains)"
    )
    parser.add_argument(
        "--recovery", type=_list_of(str, "--recovery"), metavar="METHODS",
        help=f"how the fine-tuning steps recover accuracy, an axis: {', '.join(RECOVERY_METHODS)}",
    )  # fmt: skip
    parser.add_argument("--seeds", type=_list_of(int, "--seeds"), help="training seeds, an axis, e.g. 0,1,2")
    parser.add_argument("--budget", type=_seconds("--budget"), help="timing budget per cell in seconds")
    parser.add_argument(
        "--layer-sparsities", type=_list_of(float, "--layer-sparsities"), help="sparsities of the layer-level sweep"
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
        "--shard", type=parse_shard, metavar="K/N",
        help="measure only shard K of N (each runner of N picks its own; `merge` reassembles the matrix)",
    )  # fmt: skip


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
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
    for key in ("weights", "data"):
        if getattr(args, key):
            overrides[key] = dict(getattr(args, key))
    if args.no_layers:
        overrides["layers"] = {"models": []}
    elif args.layer_sparsities is not None:
        overrides["layers"] = {"sparsities": args.layer_sparsities}
    return overrides


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config, _overrides(args))
    outcome = run_matrix(config, sys.stderr)
    if outcome.run_id is None:
        return 0  # an empty shard: the runner said so
    with read_store(config.store) as store:
        records = readable(store, store.records(outcome.run_id))
        if records:
            run = store.run(outcome.run_id)
            write_report(run, records, config.reports_dir / outcome.run_id, sys.stdout, wide=args.wide)
    counts = outcome.counts
    sys.stdout.write(
        f"run {outcome.run_id}: {counts['ok']} measured, {counts['reused']} reused from the store,"
        f" {counts['failed']} failed, {counts['skipped']} skipped\n"
    )
    return 1 if counts["failed"] else 0


def _study(args: argparse.Namespace) -> int:
    args.config = study_file(args.name)
    return _run(args)


def _list(args: argparse.Namespace) -> int:
    if args.what == "models":
        rows = [
            [
                spec.name,
                "x".join(map(str, spec.input_shape)),
                f"trained by the suite on {spec.dataset}" if spec.dataset else "n/a (no weights)",
            ]
            for spec in list_models()
        ]
        print(tabulate(rows, ["model", "input", "accuracy"]))
        print("also: any torchvision classification model name (e.g. shufflenet_v2_x1_0), for size and latency")
    elif args.what == "compressors":
        rows = []
        for name in compressors.names():
            cls = compressors.get(name)
            params = ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(cls))
            rows.append([name, params or "-", (cls.__doc__ or "").strip().splitlines()[0]])
        print(tabulate(rows, ["compressor", "parameters (defaults)", "what it does"]))
    elif args.what == "targets":
        rows = []
        for name, spec in load_target_specs(args.config).items():
            with targets.create(spec) as target:
                available, reason = target.available()
            settings = ", ".join(f"{key}={value}" for key, value in spec.settings.items())
            rows.append([name, spec.kind, settings or "-", "yes" if available else "no", reason or "-"])
        print(tabulate(rows, ["target", "kind", "settings", "available here", "note"]))
        print("`python -m bench target check NAME` connects and runs a model there")
    elif not args.store.exists():
        print(f"no runs: there is no store at {args.store} yet; start one with: python -m bench run")
    else:
        with read_store(args.store) as store:
            rows = [[r.run_id, r.started_at, r.status, ", ".join(r.models)] for r in readable(store, store.runs())]
        print(tabulate(rows, ["run", "started", "status", "models"]))
    return 0


def _target_check(args: argparse.Namespace) -> int:
    specs = load_target_specs(args.config)
    if args.name not in specs:
        raise unknown_name("target", args.name, specs, also="or one defined as [targets.NAME] in a --config file")
    rows, problem = check_target(specs[args.name])
    print(tabulate(rows, tablefmt="plain"))
    if problem is not None:
        print(f"cannot measure on {args.name}: {problem}", file=sys.stderr)
        return 1
    return 0


def _export(args: argparse.Namespace) -> int:
    with read_store(args.store) as store:
        run = store.run(args.run_id)
        text = export_run(run, readable(store, store.records(run.run_id)), args.format)
    write_output(text, args.output, "--output")
    return 0


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


_BROKEN_PIPE = 128 + signal.SIGPIPE
"""Exit status when stdout's reader went away (`| head`): what a shell reports for a tool SIGPIPE stopped."""


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's flush at exit does not raise on the closed pipe again.

    The recipe of the Python docs (signal module, "Note on SIGPIPE"); a stdout without a file descriptor (a test's
    StringIO) has nothing to redirect.
    """
    try:
        fileno = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fileno)
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m bench`; returns the exit status.

    Output piped into a reader that stops early (`python -m bench list runs | head -1`) ends quietly with status
    141, as a shell tool stopped by SIGPIPE does: the stored runs are not touched by a closed stdout.
    """
    warnings.filterwarnings("ignore", message=".*(beta state|invariant checks|deprecated).*")
    # In-process work (training, compression, accuracy) runs on one thread: on a shared machine, oversubscribed
    # OpenMP threads slow it down tenfold. Timed work runs in the worker, at the threads each cell asks for.
    torch.set_num_threads(1)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        args = build_parser().parse_args(argv)
        code = args.handler(args)
        sys.stdout.flush()  # inside the try: a closed pipe is reported here, not at interpreter exit
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return _BROKEN_PIPE
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\ninterrupted: every finished cell is in the store; run the same command again to resume", file=sys.stderr
        )
        return 130
