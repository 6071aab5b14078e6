"""`python -m bench export [RUN_ID]`: a stored run's records as CSV, JSON or pytest-benchmark JSON."""

from __future__ import annotations

from pathlib import Path

from bench.cli.support import Parser, Verbs, readable, store_flag, write_output

__all__ = ["register", "export_records"]


def register(verbs: Verbs) -> None:
    """Add the `export` verb to the CLI's subparsers."""
    verbs.add_parser(
        "export", help="write a stored run's records as CSV, JSON or pytest-benchmark JSON", arguments=_arguments
    )


def _arguments(export: Parser) -> None:
    from bench.export.formats import FORMATS

    export.add_argument("run_id", nargs="?", help="run id (default: the newest)")
    export.add_argument("--format", choices=FORMATS, default="csv")
    export.add_argument("--output", type=Path, help="file to write (default: stdout)")
    store_flag(export)
    export.set_defaults(handler=lambda args: export_records(args.store, args.run_id, args.format, args.output))


def export_records(store: Path, run_id: str | None, fmt: str, output: Path | None = None) -> int:
    """Write the records of run `run_id` (the newest when None) of the store at `store` in the format `fmt` to `output`
    (stdout when None). Returns 0."""
    from bench.export.formats import export_run
    from bench.store.database import read_store

    with read_store(store) as opened:
        run = opened.run(run_id)
        text = export_run(run, readable(opened, opened.records(run.run_id)), fmt)
    write_output(text, output, "--output")
    return 0
