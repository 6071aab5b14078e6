"""The run's side of the host process (`bench.run.host`): start it, ask it for a group's host work, watch its memory,
its time and its life, and stop it at a limit, so one cell's host work ends that cell alone.

Why a process of its own, and this one: the host work runs third-party code (torch-pruning tracing a graph, an
exporter, a quantizer) that can exhaust the machine's memory, hang in native code or crash with a signal; in the
run's own process any of these ends the run. A watchdog thread cannot stop native code, and an address-space
`ulimit` turns the run's memory into a `MemoryError` anywhere, mid-commit included. So the run keeps the store, the
targets and the progress display, and a child process does the host work of every group, one at a time, keeping
what the groups share (the references, their baselines) for as long as it lives: the plan's reuse is kept, and a
limit hit costs one restart. The child is forked, not spawned: a spawned one would import torch again (4.4 s here)
and not see the run's own state (a compressor the caller registered); a fork inherits both at once, and is safe
because the host works at one thread (a fork of a process whose OpenMP pool ran, entering a parallel region of its
own, hangs).

The watch, every 50 ms while a request is out: the child still alive (else it crashed: the signal says how); its
memory, as the resident memory it gained since it started (pages it inherited from the run are not its work's)
plus that of any process it started, against `cell_memory_gb`; and the time since the step it last announced began
against `cell_timeout_s`. At a limit the child is asked for its Python stack (SIGUSR1, into its log), then killed;
the cells the step was for fail with one line that names the limit, its value, the step and what to try, the log's
tail as their traceback, and the next request starts a new child.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import psutil

from bench.config.limits import GB, LimitsConfig
from bench.errors import BenchError
from bench.models.assets import ModelAssets
from bench.run.host import HostSetup, serve
from targets import describe_exit

__all__ = ["HostProcess", "HostStopped"]

_POLL_S = 0.05
_DESCENDANTS_EVERY_S = 1.0
_STACK_WAIT_S = 0.3  # for the child to write its Python stack before it is killed
_STOP_WAIT_S = 10.0
_LOG_READ_BYTES = 256 * 1024
_LOG_KEPT_CHARS = 6000
# How Python's crash handler (`faulthandler`) starts what it writes: on a fatal signal, and when asked (SIGUSR1).
_FATAL = "Fatal Python error:"
_STACK_MARKERS = (_FATAL, "Stack (most recent call first):", "Current thread ")
_FATAL_HEADER_CHARS = 300


class HostStopped(Exception):
    """The host process was stopped at a limit, or died, while it worked for `cells` (their ids)."""

    def __init__(self, line: str, cells: tuple[str, ...], log_tail: str) -> None:
        super().__init__(line)
        self.line = line
        self.cells = cells
        self.log_tail = log_tail

    def fields(self) -> dict[str, Any]:
        """The fields of a cell this stop ended."""
        return {"status": "failed", "error": self.line, "traceback": self.log_tail or None}


@dataclass
class _Step:
    """The step the child announced last: what it does, the cells that need it, and when it began."""

    doing: str
    cells: tuple[str, ...]
    since: float


@dataclass
class _Child:
    process: BaseProcess
    conn: Connection
    setup: HostSetup
    watched: psutil.Process  # read every poll: made once, not per read
    baseline_rss: int | None = None  # its resident memory when it started: pages inherited from the run

    @property
    def pid(self) -> int:
        assert self.process.pid is not None, "a started process has a pid"
        return self.process.pid


class HostProcess:
    """The run's host process, started on the first request and again on the first one after a stop."""

    def __init__(
        self,
        folder: Path,
        cache_dir: Path,
        assets: Mapping[str, ModelAssets],
        limits: LimitsConfig,
        say: Callable[[str], None],
    ) -> None:
        """`folder` holds each child's scratch folder and log; `say` shows a line the child sends to the user."""
        self._folder = folder
        self._cache_dir = cache_dir
        self._assets = assets
        self._limits = limits
        self._memory_bytes = int(limits.cell_memory_gb * GB)
        self._say = say
        self._child: _Child | None = None
        self._started = 0
        self._warnings: list[list[str]] = []  # the full texts of the warnings each child caught, by child

    def ask(self, verb: str, *arguments: Any, who: str, cells: tuple[str, ...]) -> Any:
        """The child's answer to `verb(*arguments)` (see `bench.run.host.serve`), for work that `who` names
        ("prune.channel on swin_t") and `cells` need.

        Raises:
            HostStopped: A limit was hit, or the child died; the cells of the step it was in are named.
            BenchError: The user's input is wrong for every cell alike (the child said so).
        """
        child = self._child or self._start()
        step = _Step("starting the step", cells, time.monotonic())
        try:
            child.conn.send((verb, *arguments))
        except OSError:
            line = f"{who} could not be prepared: the host process {self._exit(child)}"
            raise self._stopped(child, step, line) from None
        try:
            return self._answer(child, verb, step, who)
        except (HostStopped, BenchError):
            raise
        except BaseException:
            # Interrupted while the child works (Ctrl-C): the answer it still owes would answer the next request.
            self._end(child)
            raise

    def _answer(self, child: _Child, verb: str, step: _Step, who: str) -> Any:
        """Wait for the child's answer, telling what it says and watching it (see the module)."""
        cells = step.cells
        checked_descendants = 0.0
        descendants: list[psutil.Process] = []
        while True:
            if child.conn.poll(_POLL_S):
                try:
                    message = child.conn.recv()
                except (EOFError, OSError):
                    child.process.join(1.0)  # it closed its end: it is exiting
                    message = ("gone",)
                kind = message[0]
                if kind == "done":
                    if verb == "close":
                        self._warnings[-1] = message[1]
                    return message[1]
                if kind == "fatal":
                    raise BenchError(message[1])
                if kind == "say":
                    self._say(message[1])
                elif kind == "stage":
                    step = _Step(message[1], tuple(message[2]) or cells, time.monotonic())
                    continue
            if not child.process.is_alive():
                how = self._exit(child)
                crashed = " (native code crashed)" if (child.process.exitcode or 0) < 0 else ""
                raise self._stopped(child, step, f"{who}: the host process {how} while {step.doing}{crashed}")
            now = time.monotonic()
            if now - checked_descendants > _DESCENDANTS_EVERY_S:
                descendants, checked_descendants = _descendants(child.pid), now
            used = self._memory(child, descendants)
            if used is not None and used > self._memory_bytes:
                limit = f"{self._limits.cell_memory_gb:g} GB"
                line = (
                    f"{who} used more than {limit} of memory while {step.doing}; stopped at the --cell-memory limit"
                    f" ({limit}): raise it if this machine has the memory, or leave this model out"
                )
                raise self._stopped(child, step, line, kill=True)
            if now - step.since > self._limits.cell_timeout_s:
                limit = f"{self._limits.cell_timeout_s:g} s"
                line = (
                    f"{who} took more than {limit} while {step.doing}; stopped at the --cell-timeout limit ({limit}):"
                    " raise it if the step is only slow"
                )
                raise self._stopped(child, step, line, kill=True)

    def end_group(self) -> None:
        """Have the child, if one runs, drop the group's models and files, and send the warnings it caught."""
        if self._child is None:
            return
        try:
            self.ask("close", who="the end of a group", cells=())
        except HostStopped:
            pass  # it died dropping them: the next group starts a new one

    def warnings(self) -> list[str]:
        """The full text of each kind of warning the host processes caught, each child's as of its last group."""
        return [text for texts in self._warnings for text in texts]

    def close(self) -> None:
        """Stop the child, if one runs: asked first, killed if it does not go."""
        child, self._child = self._child, None
        if child is None:
            return
        try:
            child.conn.send(("stop",))
        except OSError:
            pass  # already gone
        child.process.join(_STOP_WAIT_S)
        self._end(child)

    def _end(self, child: _Child) -> None:
        """Kill the child (if it still runs) and remove its scratch folder."""
        if child.process.is_alive():  # not reaped yet, so its pid is still its own
            _kill(child.pid)
        child.process.join()
        child.conn.close()
        self._child = None
        shutil.rmtree(child.setup.workdir, ignore_errors=True)

    def _start(self) -> _Child:
        self._started += 1
        workdir = self._folder / f"host-{self._started}"
        workdir.mkdir(parents=True)
        setup = HostSetup(self._cache_dir, self._assets, workdir, self._folder / f"host-{self._started}.log")
        context = multiprocessing.get_context("fork")
        ours, theirs = context.Pipe()
        process = context.Process(target=serve, args=(theirs, setup), name="bench-host", daemon=True)
        process.start()
        theirs.close()
        assert process.pid is not None, "a started process has a pid"
        self._child = _Child(process, ours, setup, psutil.Process(process.pid))
        self._warnings.append([])
        return self._child

    def _memory(self, child: _Child, descendants: list[psutil.Process]) -> int | None:
        """The resident memory the child's work has: what it gained since it started, and all of its own
        processes'; None when it is gone."""
        try:
            rss = child.watched.memory_info().rss
        except psutil.Error:
            return None
        if child.baseline_rss is None:
            child.baseline_rss = rss
        used = rss - child.baseline_rss
        for process in descendants:
            try:
                used += process.memory_info().rss
            except psutil.Error:
                continue
        return used

    def _stopped(self, child: _Child, step: _Step, line: str, kill: bool = False) -> HostStopped:
        """End the child (with its stack in its log first, when it is killed at a limit) and say which cells the
        step it was in ends."""
        if kill and child.process.is_alive():
            try:
                os.kill(child.pid, signal.SIGUSR1)
                time.sleep(_STACK_WAIT_S)
            except OSError:
                pass
        self._end(child)
        return HostStopped(line, step.cells, _tail(child.setup.log))

    @staticmethod
    def _exit(child: _Child) -> str:
        child.process.join(_POLL_S)
        return describe_exit(child.process.exitcode)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _kill(pid: int) -> None:
    """SIGKILL a process and every process it started."""
    try:
        processes = [*_descendants(pid), psutil.Process(pid)]
    except psutil.Error:
        processes = _descendants(pid)
    for process in processes:
        try:
            process.kill()
        except psutil.Error:
            continue


def _tail(log: Path) -> str:
    """What the child's log says of where it was: from the last stack its crash handler or a kill at a limit wrote
    (innermost frame first, so its head is kept), else its last lines (what a library printed)."""
    try:
        with log.open("rb") as handle:
            handle.seek(max(log.stat().st_size - _LOG_READ_BYTES, 0))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    start = max(text.rfind(marker) for marker in _STACK_MARKERS)
    fatal = text.rfind(_FATAL, 0, start + 1)
    if fatal >= 0 and start - fatal < _FATAL_HEADER_CHARS:
        start = fatal  # the crash's own line, just above its stack
    if start >= 0:
        return text[start : start + _LOG_KEPT_CHARS].strip()
    return text[-_LOG_KEPT_CHARS:].strip()
