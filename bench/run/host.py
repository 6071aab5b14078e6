"""The host process: where a run's host work is done (build, compress, recover, export, evaluate), apart from the
run itself, so that whatever a library does there (exhaust memory, hang, crash natively) ends that process and not
the run (`bench.run.isolation` starts it, watches it and stops it).

It serves the run's requests one at a time over a pipe, and keeps what a run shares between groups (the references
and what is measured of them, `Baselines`) for as long as it lives. Before each step it tells the run what the step
does and which cells need it; what it has to say to the user (a reference being trained, a library's warning) goes
to the run too. Its own output (a native crash's report, what a library prints) goes to its log file.
"""

from __future__ import annotations

import ctypes
import faulthandler
import multiprocessing
import os
import shutil
import signal
import stat
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch

from bench.errors import BenchError
from bench.models.assets import ModelAssets
from bench.models.references import References
from bench.run.baselines import Baselines
from bench.run.cells import LayerPairs, layer_pairs, outcome_of
from bench.run.host_warnings import HostWarnings
from bench.run.matrix import Cell
from bench.run.prepare import Placed, Preparation, Prepared

__all__ = ["HostSetup", "serve"]

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@dataclass(frozen=True)
class HostSetup:
    """What the host process needs from the run: where trained references are cached, the user's weights and data,
    its own scratch folder, and its log file."""

    cache_dir: Path
    assets: Mapping[str, ModelAssets]
    workdir: Path
    log: Path


def serve(conn: Connection, setup: HostSetup) -> None:
    """The host process's life: answer the run's requests until it says stop or goes away.

    Requests are tuples, `(verb, *arguments)`; each is answered with `("done", answer)`, or `("fatal", message)`
    when the user's input is wrong for every cell alike (a `BenchError`). Before that, any number of
    `("stage", doing, cell_ids)` and `("say", line)`.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle: it stops this process
    _die_with_the_run()
    _own_output(setup.log, keep=conn.fileno())
    torch.set_num_threads(1)  # the host's work runs at one thread (`bench.cli.support.host_torch`)
    host = _Host(conn, setup)
    while True:
        try:
            verb, *arguments = conn.recv()
        except EOFError:
            return  # the run is gone
        if verb == "stop":
            return
        try:
            answer = getattr(host, verb)(*arguments)
        except BenchError as error:
            conn.send(("fatal", str(error)))
            continue
        conn.send(("done", answer))


def _die_with_the_run() -> None:
    """On Linux, have the kernel kill this process when the run dies (`kill -9`, the OOM killer), even in the middle
    of a step; elsewhere it ends at its next request, when it reads the end of the run's pipe."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    run = multiprocessing.parent_process()
    if run is not None and os.getppid() != run.pid:  # the run died before the line above: nobody is left to ask
        os._exit(0)


def _own_output(log: Path, keep: int) -> None:
    """Send this process's stdout and stderr to `log`, report a native crash there with the Python stack, and close
    the pipes and sockets it inherited from the run but the one it talks on: a timing worker's pipe held open here
    would keep that worker from seeing its end, and the run's own end of this process's pipe would keep this
    process from seeing the run go."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    # The run's own streams may be no files at all (a caller that captures them): this process writes to the log.
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - lives as long as the process
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    for name in os.listdir("/proc/self/fd"):
        inherited = int(name)
        try:
            mode = os.fstat(inherited).st_mode
            if inherited > 2 and inherited != keep and (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
                os.close(inherited)
        except OSError:
            continue  # the listing's own descriptor, closed by now
    faulthandler.enable(file=sys.stderr, all_threads=False)
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=False)  # asked before a kill at a limit


class _Host:
    """The requests the host process serves: each method is a verb."""

    def __init__(self, conn: Connection, setup: HostSetup) -> None:
        self._conn = conn
        self._workdir = setup.workdir
        self._baselines = Baselines(References(setup.cache_dir, setup.assets, self._say), setup.workdir / "baselines")
        self._warned = HostWarnings(self._say)
        self._group: Preparation | None = None
        self._folders: list[Path] = []  # a layer sweep's GEMM files, until its group ends

    def _say(self, line: str) -> None:
        self._conn.send(("say", line))

    def _stage(self, doing: str, cells: tuple[str, ...]) -> None:
        self._conn.send(("stage", doing, cells))

    def prepare(self, placed: Sequence[Placed], doing: str) -> None:
        """Start a group: make what its `placed` cells need (`Preparation.prepare`), ahead of their timing."""
        self.close()
        self._group = Preparation(self._baselines, self._workdir / "candidates", self._stage)
        with self._warned.watching(doing):
            self._group.prepare(placed)

    def timed(self, cell: Cell, machine: Mapping[str, Any], device: str) -> Prepared | dict[str, Any]:
        """What the group prepared for a model cell to time, or the fields of its skip or failure."""
        assert self._group is not None, "a group is prepared before its cells are timed"
        self._stage("preparing its timing", (cell.id,))
        with self._warned.watching(f"{cell.compressor} on {cell.model}"):
            try:
                return self._group.timed(cell, machine, device)
            except BenchError:
                raise
            except Exception as error:  # noqa: BLE001 - one failing cell is recorded and the matrix goes on
                return outcome_of(cell, error)

    def layers(self, cell: Cell) -> LayerPairs | dict[str, Any]:
        """The GEMM pairs of a layer-sweep cell, or the fields of its failure."""
        self._stage("writing the model's GEMMs", (cell.id,))
        with self._warned.watching(f"the layer sweep of {cell.model}"):
            try:
                folder = self._workdir / cell.id
                folder.mkdir(parents=True, exist_ok=True)
                self._folders.append(folder)
                return layer_pairs(cell, self._baselines.reference(cell.model), folder)
            except BenchError:
                raise
            except Exception as error:  # noqa: BLE001 - as in `timed`
                return outcome_of(cell, error)

    def close(self) -> list[str]:
        """End the group: drop its models and files. Returns the full text of each kind of warning so far."""
        if self._group is not None:
            self._group.close()
            self._group = None
        for folder in self._folders:
            shutil.rmtree(folder, ignore_errors=True)
        self._folders.clear()
        return self._warned.texts()
