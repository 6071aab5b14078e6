"""Cells -> records in the store: build, compress, measure, store at once; resume; failures recorded, run goes on."""

from __future__ import annotations

import functools
import secrets
import time
import traceback
from collections import Counter
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import targets
from bench.config.run_config import RunConfig
from bench.errors import BenchError
from bench.records import KINDS, SCHEMA_VERSION, Record, Timing, machine_id
from bench.run.cells import TimedArtifacts, measure_layers_cell, measure_model_cell, outcome_of
from bench.run.fingerprint import commit_fingerprint, host_fingerprint, other_cpu_cores_now
from bench.run.isolation import HostProcess, HostStopped
from bench.run.matrix import Cell, expand
from bench.run.plan import plan
from bench.run.prepare import Placed, skip_holds
from bench.run.progress import Progress
from bench.run.scratch import Owner, scratch_folder, sweep_dead_runs
from bench.run.shards import shard_cells, shard_json
from bench.store.artifacts import ArtifactFolder, artifacts_beside
from bench.store.database import Store, open_store
from targets import Target, TargetSpec

__all__ = ["RunOutcome", "run_matrix", "new_run_id"]


@dataclass
class RunOutcome:
    """What a run did: its id (None when its shard had no cells: nothing ran or was stored), how many cells
    were measured ok, failed, skipped, or reused, and the full text of each kind of Python warning its host work
    raised (each was told as one line in the progress display: see `bench.run.host_warnings`)."""

    run_id: str | None
    counts: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class _Unusable:
    """Why a target cannot measure in this run: ``skipped`` (not present here) or ``failed`` (present, broken)."""

    status: str
    reason: str


class _Targets:
    """Targets opened on first use, with their availability and machine facts looked up once per run.

    A target that is absent here (no GPU, no ssh client) makes its cells ``skipped``; one that is configured
    but cannot be reached or cannot run the worker makes them ``failed`` with the reason. Either way the
    run goes on with the other targets.
    """

    def __init__(self, stack: ExitStack, specs: Mapping[str, TargetSpec]) -> None:
        self._stack = stack
        self._specs = specs
        self._open: dict[str, Target] = {}
        self._machine: dict[str, dict[str, Any] | _Unusable] = {}

    def get(self, name: str) -> tuple[Target, dict[str, Any] | _Unusable]:
        """The target and its machine facts, or why it cannot measure."""
        if name not in self._open:
            target = self._stack.enter_context(targets.create(self._specs[name]))
            self._open[name] = target
            available, reason = target.available()
            if not available:
                self._machine[name] = _Unusable("skipped", f"target '{name}' unavailable: {reason}")
            else:
                try:
                    self._machine[name] = target.machine_info()
                except targets.TargetError as error:
                    self._machine[name] = _Unusable("failed", str(error))  # its message names the target
        return self._open[name], self._machine[name]


def run_matrix(config: RunConfig, stream: TextIO) -> RunOutcome:
    """Measure every cell of `config` not already in the store (all of them with `config.force`).

    A cell is in the store when a record of it on the same machine is ok, or skipped for a reason the code and the
    config decide (see `bench.run.prepare.skip_holds`): a re-run of a finished matrix measures nothing. A skip the
    machine decided (an engine not installed on the device) is measured again.

    Each record is committed before the next cell starts, so an interrupted run loses at most the cell in progress,
    and the next run with the same matrix resumes where this one stopped. KeyboardInterrupt propagates after the
    run is marked interrupted. A run killed before it could mark itself is marked by the next one, which also
    removes its scratch folder and worker logs (see `bench.run.scratch`). With `config.shard`, only that shard's cells
    are measured (see `bench.config.shards`), and a shard without cells opens no store.
    """
    matrix = expand(config)
    stored = config.to_json()
    # Each cell's place in the whole matrix, so the merged run of the shards lists them in the matrix's order.
    positions = {cell.id: position for position, cell in enumerate(matrix)}
    cells = matrix
    if config.shard is not None:
        stored["shard"] = shard_json(matrix, config.shard)
        cells = shard_cells(matrix, config.shard)
        if not cells:
            stream.write(
                f"shard {config.shard}: none of the matrix's {len(matrix)} cells falls to this shard; nothing to run\n"
            )
            return RunOutcome(None)
    store = open_store(config.store)
    swept = sweep_dead_runs(store).line()
    if swept is not None:
        stream.write(swept + "\n")
    run_id = new_run_id()
    outcome = RunOutcome(run_id)
    owner = Owner.current(run_id)
    cell_list = [{"id": c.id, **c.to_json(), "position": positions[c.id]} for c in cells]
    store.start_run(run_id, stored, cell_list, host_fingerprint(), commit_fingerprint(), owner.to_json())
    status = "aborted"
    try:
        with ExitStack() as stack:
            workdir = stack.enter_context(scratch_folder(owner))
            progress = Progress(cells, stream)
            host = HostProcess(workdir / "host", config.cache_dir, config.assets, config.limits, progress.message)
            stack.callback(host.close)
            session = _Session(
                config=config,
                store=store,
                run_id=run_id,
                outcome=outcome,
                host=host,
                targets=_Targets(stack, config.target_specs),
                progress=progress,
                timed=TimedArtifacts(_kept_artifacts(config)),
            )
            try:
                for group in plan(cells):
                    session.run_group(group.cells)
            finally:
                outcome.warnings = host.warnings()
        status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        store.finish_run(run_id, status)
        store.close()
    return outcome


def _kept_artifacts(config: RunConfig) -> ArtifactFolder | None:
    """The folder the run keeps its timed artifacts in, when it keeps them."""
    if not config.artifacts.keep:
        return None
    return ArtifactFolder(artifacts_beside(config.store), config.artifacts.cap_bytes)


@dataclass
class _Session:
    """Everything the cells of one run share: the store, the host process that prepares what they time, the open
    targets, a scratch folder; and, for the group being run, which cells are done and which a stop of the host
    process ended."""

    config: RunConfig
    store: Store
    run_id: str
    outcome: RunOutcome
    host: HostProcess
    targets: _Targets
    progress: Progress
    timed: TimedArtifacts
    looked_busy: bool = False
    prepared: bool = False
    done: set[str] = field(default_factory=set)
    stopped: dict[str, HostStopped] = field(default_factory=dict)

    def run_group(self, cells: tuple[Cell, ...]) -> None:
        """Run the cells of one training group of the plan, in order: each is answered by its stored record, or
        measured; the host process prepares what the measured ones need once, when the first of them starts, before
        any of them is timed (so a re-run of a finished group prepares nothing)."""
        placed = [(cell, *self.targets.get(cell.target)) for cell in cells]
        stored = {cell.id: self._stored(cell, target, machine) for cell, target, machine in placed}
        measured: list[Placed] = [
            (cell, machine, target.device)
            for cell, target, machine in placed
            if stored[cell.id] is None and isinstance(machine, dict)
        ]
        self.prepared = False
        self.done.clear()
        self.stopped.clear()
        try:
            for cell, target, machine in placed:
                existing = stored[cell.id]
                if existing is not None:
                    self.store.reuse(self.run_id, cell.id, existing)
                    self.outcome.counts["reused"] += 1
                    self.progress.done(cell, None)
                    continue
                if isinstance(machine, dict):
                    self._warn_if_busy()
                self.progress.start(cell)
                started = time.monotonic()
                if isinstance(machine, _Unusable):
                    fields: dict[str, Any] = {"status": machine.status, "error": machine.reason}
                else:
                    # The group's preparation is counted in the first measured cell's time, which the ETA reads.
                    fields = self._measure(cell, target, machine, measured)
                known = machine if isinstance(machine, dict) else {}
                record = self._record(cell, known, {**fields, "elapsed_s": time.monotonic() - started})
                self.store.add_record(self.run_id, record)
                self.done.add(cell.id)
                self.outcome.counts[record.status] += 1
                self.progress.done(cell, record)
        finally:
            self.host.end_group()

    def _measure(self, cell: Cell, target: Target, machine: dict[str, Any], measured: list[Placed]) -> dict[str, Any]:
        """Time what the host process prepared for the cell; what could not be prepared for it (a limit of the
        compressor or engine, an error, a stop of the host process) becomes the cell's skip or failure."""
        who = _who(cell)
        try:
            if cell.kind == "layers":
                pairs = self.host.ask("layers", cell, who=who, cells=(cell.id,))
                if isinstance(pairs, dict):
                    return pairs
                return measure_layers_cell(cell, pairs, target, self.config.timing, self.config.layers.budget_s)
            if not self.prepared:
                self._prepare(measured, who)
            if cell.id in self.stopped:
                return self.stopped[cell.id].fields()
            prepared = self.host.ask("timed", cell, machine, target.device, who=who, cells=(cell.id,))
            if isinstance(prepared, dict):
                return prepared
            return measure_model_cell(cell, prepared, target, self.config.timing, self.timed)
        except HostStopped as stop:
            self.prepared = False  # a new host process prepares the group's cells still ahead
            self.stopped.update(dict.fromkeys(stop.cells, stop))
            return stop.fields()
        except BenchError:
            raise  # the user's input is wrong for every cell alike: stop with one line, finished cells are stored
        except Exception as error:  # noqa: BLE001 - one failing cell is recorded and the matrix goes on
            return outcome_of(cell, error)

    def _prepare(self, measured: list[Placed], who: str) -> None:
        """Have the host process prepare the group's measured cells still ahead. A stop ends the cells of the step
        it came in (at least one), and the rest are prepared again by a new host process."""
        while True:
            ahead = [placed for placed in measured if placed[0].id not in self.done | self.stopped.keys()]
            if not ahead:
                return
            try:
                self.host.ask("prepare", ahead, who, who=who, cells=tuple(cell.id for cell, _, _ in ahead))
            except HostStopped as stop:
                self.stopped.update(dict.fromkeys(stop.cells, stop))
                continue
            self.prepared = True
            return

    def _stored(self, cell: Cell, target: Target, machine: dict[str, Any] | _Unusable) -> int | None:
        """The id of the cell's stored record that answers it on this machine (ok, or a skip that holds), unless
        `--force`."""
        if not isinstance(machine, dict) or self.config.force:
            return None
        # A skip the code and the config decided is as final as an ok record; one the machine decided is not.
        holds = functools.partial(skip_holds, cell, machine=machine, device=target.device)
        return self.store.finished(cell.id, machine_id(machine), keep_skip=holds)

    def _warn_if_busy(self) -> None:
        """Before the first cell this run measures, warn when other processes keep the machine busy.

        Looked at once, and only when a cell is measured: the look samples the CPU for half a second, which a
        re-run that reuses every cell need not wait for.
        """
        if self.looked_busy:
            return
        self.looked_busy = True
        others = other_cpu_cores_now()
        if others > Timing.BUSY_CORES:
            self.progress.message(
                f"warning: busy machine: other processes are using {others:.1f} cores; latency may be off by"
                " multiples (cells measured while busy are flagged)"
            )

    def _record(self, cell: Cell, machine: dict[str, Any], fields: dict[str, Any]) -> Record:
        """The typed record of a measured cell; a measurement that does not fit its type fails the cell instead."""
        identity = {
            "schema_version": SCHEMA_VERSION,
            "cell_id": cell.id,
            **cell.to_json(),
            "machine_id": machine_id(machine),
            "machine": machine,
        }
        identity.pop("kind")
        kind = KINDS[cell.kind]
        try:
            return kind(**identity, **{"status": "ok", **fields})
        except (TypeError, ValueError) as error:
            reason = f"the measurement does not fit a {cell.kind} record: {error}"
            return kind(
                **identity,
                status="failed",
                error=reason,
                traceback=traceback.format_exc(),
                elapsed_s=fields.get("elapsed_s"),
            )


def _who(cell: Cell) -> str:
    """The cell's host work, as a stop of it names it."""
    return f"the layer sweep of {cell.model}" if cell.kind == "layers" else f"{cell.compressor} on {cell.model}"
