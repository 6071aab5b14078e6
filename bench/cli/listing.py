"""`python -m bench list {models,compressors,targets,runs}`: what the suite can measure, and what it has stored.

Each listing imports only what it shows: `list runs` reads the store alone, without torch, so it answers at once.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tabulate import tabulate

from bench.cli.support import Parser, Verbs, readable, store_flag

__all__ = ["register", "show_list", "list_runs"]

WHATS = ("models", "compressors", "targets", "runs")


def register(verbs: Verbs) -> None:
    """Add the `list` verb to the CLI's subparsers."""
    verbs.add_parser("list", help="show the models, compressors, targets or stored runs", arguments=_arguments)


def _arguments(listing: Parser) -> None:
    listing.add_argument("what", choices=list(WHATS))
    listing.add_argument("--config", type=Path, help="TOML file whose [targets.NAME] tables `list targets` shows too")
    store_flag(listing)
    listing.set_defaults(handler=lambda args: show_list(args.what, args.store, args.config))


def show_list(what: str, store: Path, config: Path | None = None) -> int:
    """Print the table of `what` (one of `WHATS`); `config` adds its targets to `list targets`. Returns 0."""
    if what == "runs":
        return list_runs(store)
    if what == "models":
        _models()
    elif what == "compressors":
        _compressors()
    else:
        _targets(config)
    return 0


def list_runs(store: Path) -> int:
    """Print the runs of the store at `store`, oldest first, or how to start one when there is no store. Returns 0."""
    from bench.store.database import read_store

    if not store.exists():
        print(f"no runs: there is no store at {store} yet; start one with: python -m bench run")
        return 0
    with read_store(store) as opened:
        rows = [[r.run_id, r.started_at, r.status, ", ".join(r.models)] for r in readable(opened, opened.runs())]
    print(tabulate(rows, ["run", "started", "status", "models"]))
    return 0


def _models() -> None:
    from bench.models.registry import list_models

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


def _compressors() -> None:
    import compressors

    rows = []
    for name in compressors.names():
        cls = compressors.get(name)
        params = ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(cls))
        rows.append([name, params or "-", (cls.__doc__ or "").strip().splitlines()[0]])
    print(tabulate(rows, ["compressor", "parameters (defaults)", "what it does"]))


def _targets(config: Path | None) -> None:
    import targets
    from bench.config.run_config import load_target_specs

    rows = []
    for name, spec in load_target_specs(config).items():
        with targets.create(spec) as target:
            available, reason = target.available()
        settings = ", ".join(f"{key}={value}" for key, value in spec.settings.items())
        rows.append([name, spec.kind, settings or "-", "yes" if available else "no", reason or "-"])
    print(tabulate(rows, ["target", "kind", "settings", "available here", "note"]))
    print("`python -m bench target check NAME` connects and runs a model there")
