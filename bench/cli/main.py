"""`python -m bench VERB`: the parser, the table of verbs, and what every verb's exit looks like.

Each verb is a module of `bench.cli` (`VERBS`) that adds its parser with `register(verbs)` and does its work in a
typed function the parser's `handler` calls. A verb's flags are added when that verb parses, and its work imports
what it needs when it runs: this module imports nothing heavy, so `python -m bench list runs` reads the store
without loading torch.

A `BenchError` anywhere becomes one line on stderr and exit status 2; Ctrl-C or SIGTERM stops after the cell in
progress is abandoned, with every finished cell already stored.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from bench.cli import ci, compare, export, history, listing, merge, report, run, target
from bench.cli.support import Parser, Verb
from bench.errors import BenchError

__all__ = ["main", "build_parser", "VERBS"]

VERBS: tuple[Verb, ...] = (run, listing, target, export, report, compare, history, merge, ci)
"""The verb modules, in the order `python -m bench --help` lists their verbs (`run` adds `run` and `study`)."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m bench", description="Hardware-aware benchmarks of neural-network compression.")
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=Parser)
    for verb in VERBS:
        verb.register(verbs)
    return parser


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
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        args = build_parser().parse_args(argv)
        code: int = args.handler(args)
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
