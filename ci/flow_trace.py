"""Follow one run through the suite's own files and count how often it goes back to a file it had left.

    python ci/flow_trace.py [--store PATH] [RUN FLAGS...]

runs `python -m bench run RUN FLAGS` (default: one small cell, `--models digits_cnn --compressors
prune.channel --targets cpu --no-layers`, in a fresh store) under `sys.setprofile` and records every call from one
file of `bench/` into another, from the moment the config is loaded (the command line's parser is left out). A
step is such a call, counted the first time that file calls that file (a training loop's batches are one step, not
one per batch); a step *goes back* when it enters a file the run had already entered from somewhere else, so a
reader following the run meets that file again. A layout whose run flows from config to matrix to plan to
preparation to the target to the store reads as a short chain; lazy state computed on first use from several
callers shows as many steps back. What runs while a module is imported is left out, and so is the report written
at the end (the trace stops where it starts). The host process (`bench.run.host`), forked by the run, is traced
too, and its calls are merged with the run's in the order they were made.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = str(ROOT / "bench")
DEFAULT = ["--models", "digits_cnn", "--compressors", "prune.channel", "--targets", "cpu", "--no-layers"]


def trace(argv: Sequence[str]) -> list[tuple[str, str]]:
    """Each call from a file of `bench/` into another, as (caller's file, callee's file), in the order the run made
    them, until its report starts."""
    sys.path.insert(0, str(ROOT))
    try:
        from bench.cli.main import main
    except ImportError:  # the flat layout this measures against: bench/cli.py
        from bench.cli import main  # type: ignore[attr-defined,no-redef]

    import bench.run.isolation as isolation

    calls: list[tuple[float, str, str]] = []
    started = stopped = False

    def ours(frame: FrameType | None) -> str | None:
        """The file of `bench/` the nearest frame from `frame` up runs in."""
        while frame is not None and not frame.f_code.co_filename.startswith(BENCH):
            frame = frame.f_back
        return None if frame is None else str(Path(frame.f_code.co_filename).relative_to(ROOT))

    def importing(frame: FrameType | None) -> bool:
        """Whether `frame` runs while a module of `bench/` is being imported: not the run's flow."""
        while frame is not None:
            if frame.f_code.co_name == "<module>" and frame.f_code.co_filename.startswith(BENCH):
                return True
            frame = frame.f_back
        return False

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        nonlocal started, stopped
        if stopped or event != "call" or importing(frame):
            return
        callee = ours(frame) if frame.f_code.co_filename.startswith(BENCH) else None
        if callee is None:
            return
        started = started or _is_config(callee)
        if not started:
            return
        if _is_report(callee):
            stopped = True
            return
        caller = ours(frame.f_back)
        if caller is not None and caller != callee:
            calls.append((time.monotonic(), caller, callee))

    serve = isolation.serve
    with tempfile.TemporaryDirectory() as host_calls:

        def traced_serve(*args: Any) -> None:
            """The host process's life, traced: its calls go to a file of their own, read back when the run ends."""
            calls.clear()  # what the run had traced before the fork is the run's
            sys.setprofile(profile)
            try:
                serve(*args)
            finally:
                sys.setprofile(None)
                (Path(host_calls) / f"{os.getpid()}.json").write_text(json.dumps(calls))

        isolation.serve = traced_serve  # type: ignore[assignment]
        sys.setprofile(profile)
        try:
            main(["run", *argv])
        finally:
            sys.setprofile(None)
            isolation.serve = serve
        for path in Path(host_calls).glob("*.json"):
            calls.extend((when, caller, callee) for when, caller, callee in json.loads(path.read_text()))
    return [(caller, callee) for _when, caller, callee in sorted(calls)]


def _is_config(where: str) -> bool:
    """The run's flow starts where the config is loaded: `bench/config/` (or the flat `bench/config.py`)."""
    path = Path(where)
    return path.parts[:2] == ("bench", "config") or where == "bench/config.py"


def _is_report(where: str) -> bool:
    """The report is the read side, written after the run: `bench/report/` (or the flat `bench/report*.py`)."""
    path = Path(where)
    return path.parts[:2] == ("bench", "report") or (path.parent.name == "bench" and path.stem.startswith("report"))


def count(calls: Sequence[tuple[str, str]]) -> tuple[int, int, int]:
    """(files, steps, steps back to a file already left): a step is a call from one file into another, counted the
    first time that caller calls that callee (a training loop's batches are one step); it goes back when the callee
    had already been entered from somewhere else, so a reader following the run meets that file again."""
    entered: set[str] = set()
    steps: set[tuple[str, str]] = set()
    back = 0
    for caller, callee in calls:
        if (caller, callee) in steps:
            continue
        steps.add((caller, callee))
        back += callee in entered
        entered.update((caller, callee))
    return len(entered), len(steps), back


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, help="store to run into (default: a fresh one)")
    parser.add_argument("--show", action="store_true", help="print every visit")
    args, flags = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as scratch:
        store = args.store or Path(scratch) / "bench.sqlite"
        calls = trace([*(flags or DEFAULT), "--store", str(store)])
    if args.show:
        print("\n".join(f"{caller} -> {callee}" for caller, callee in dict.fromkeys(calls)))
    files, steps, returns = count(calls)
    print(f"{files} files, {steps} steps, {returns} of them back to a file already left")


if __name__ == "__main__":
    main()
