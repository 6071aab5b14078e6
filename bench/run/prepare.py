"""Host work of one training group of the plan, done once and in order before any of its cells is timed: the
reference and what is measured of it, each compressed (and recovered) model, each candidate, each engine's artifact
(see `bench.run.plan`). A cell then only times what was prepared for it (`bench.run.cells`). It runs in the run's host
process (`bench.run.host`), which announces each of its steps to the run so that a stop at a limit ends the cells
of that step alone (`bench.run.isolation`).

What a group makes lives until the group is done (`close`), so memory and disk hold one group at a time; a group
holds one compressed model per device resolution of its config (int8 "auto" packs for x86 here, qnnpack on ARM).
What is measured of a reference lives as long as the host process (`bench.run.baselines`), the whole run unless a
limit stops it: every group of a model times against one baseline.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

import compressors
from bench import engines
from bench.engines import Engine, EngineLimit, Exported, Source
from bench.measure.encodings import coded_sizes
from bench.measure.flops import macs_report
from bench.measure.size import size_report
from bench.models.references import Reference
from bench.records import Accuracy, Macs, Record, Sizes
from bench.run.baselines import Baselines, Made
from bench.run.compress import compress
from bench.run.exit_facts import ExitFacts, check_branches, exit_facts
from bench.run.matrix import Cell
from compressors import Compressed, CompressorConfig

__all__ = ["Announce", "Artifact", "Placed", "Prepared", "Preparation", "machine_limit", "skip_holds"]

# A cell to measure, with the machine facts and the device of its target.
Placed = tuple[Cell, Mapping[str, Any], str]
# Told what a step of the preparation does and the ids of the cells that need it, before it starts.
Announce = Callable[[str, tuple[str, ...]], None]


def machine_limit(cell: Cell, machine: Mapping[str, Any], device: str) -> str | None:
    """Why the machine that `machine` describes cannot run the cell on `device`, or None when it can.

    The skips a machine decides (an engine not installed on the device, no execution provider for its GPU) are
    all decided here, from the machine's facts: every other skip follows from the code and the config (a
    compressor that does not apply, an engine that cannot export the candidate) and comes again on every run.
    That is what lets a stored skip say where it came from without a field of its own (see `skip_holds`).
    """
    if cell.kind != "model":
        return None  # a layer sweep times torch's GEMMs in the worker itself: no engine to install
    return engines.get(cell.engine).device_unavailable(machine, device)


def skip_holds(cell: Cell, stored: Record, machine: Mapping[str, Any], device: str) -> bool:
    """Whether the stored skip of `cell` answers it on this machine (`machine`, `device`) without measuring again.

    A skip measured on a machine that could run the cell came from the code and the config, so measuring again
    would only find it again (an ONNX export of CSR fails the same way every time): it holds, like an ok record,
    until `--force`, while this machine can run the cell too. A skip the machine decided is measured again: the
    device may have the engine by now, as a user who installs it expects.
    """
    return machine_limit(cell, stored.machine, device) is None and machine_limit(cell, machine, device) is None


@dataclass(frozen=True)
class _Candidate:
    """A compressed model made ready for the engines, with what the host measured of it whatever the engine.

    `measured` is the part of the compressed model the candidate runs (`CompressorConfig.measured`), whose
    parameters, bytes and MACs its cells report.
    """

    source: Source
    compressed: Compressed
    measured: nn.Module
    accuracy_before: float | None
    sizes: dict[str, int]
    fields: dict[str, Any]
    # Where test inputs leave and what that costs, for a compressor whose work depends on the input.
    exit_facts: ExitFacts | None = None


@dataclass(frozen=True)
class Artifact:
    """One engine's artifact of a candidate and the host-measured fields of a cell that times it."""

    exported: Exported
    fields: dict[str, Any]


@dataclass(frozen=True)
class Prepared:
    """What one model cell times and reports: the worker's pair (baseline and candidate artifacts, inputs), the
    fields the host measured, and whether it times a stream of real inputs; or why it is skipped after all."""

    pair: dict[str, Any]
    fields: dict[str, Any]
    stream: bool = False
    skip: str | None = None


def _coded_sizes(compressed: Compressed) -> dict[str, int]:
    if not compressed.codes:
        return {}
    return coded_sizes({k: v.detach() for k, v in compressed.model.state_dict().items()}, compressed.codes)


def _key(config: CompressorConfig) -> tuple[Any, ...]:
    return config.name, tuple(sorted(config.to_dict().items()))


def _by_model(cell: Cell, _config: CompressorConfig, _engine: Engine) -> object:
    return cell.model


def _by_engine(_cell: Cell, _config: CompressorConfig, engine: Engine) -> object:
    return engine.name


def _by_training(_cell: Cell, config: CompressorConfig, _engine: Engine) -> object:
    return config.training_key()


def _by_candidate(_cell: Cell, config: CompressorConfig, _engine: Engine) -> object:
    return _key(config)


def _config(cell: Cell, machine: Mapping[str, Any]) -> CompressorConfig:
    # Compressed for the device that runs it: int8 "auto" packs for qnnpack when the target is ARM.
    return compressors.get(cell.compressor).from_dict(dict(cell.params)).for_device(machine["arch"])


def _quietly(make: Callable[..., object], *args: Any) -> None:
    """Make a piece ahead of the cells; a failure is kept by `Preparation` and raised to the cells that need it."""
    try:
        make(*args)
    except Exception:  # noqa: BLE001 - kept in the memo, recorded by each cell that needs the piece
        pass


class Preparation:
    """The models and artifacts of one training group, made by `prepare` before its cells are timed, kept until
    `close`.

    Each piece (a compressed model, a candidate, an engine's artifact) is made once, and so is a failure (`Made`):
    one failing piece fails or skips only the cells that need it, and the run goes on.
    """

    def __init__(self, baselines: Baselines, directory: Path, announce: Announce = lambda _doing, _cells: None) -> None:
        """Start empty: the group's cells measure against `baselines`; its artifacts live in `directory`.

        `announce` is told each step of `prepare` before it starts: what it does and the ids of the cells that
        need it, which are the cells a stop of that step ends (`bench.run.isolation`).
        """
        self._baselines = baselines
        self._directory = directory
        self._announce = announce
        self._made = Made()
        self._exports = 0

    def prepare(self, placed: Sequence[Placed]) -> None:
        """Make what the `placed` cells need, level by level: the reference and what is measured of it (size, MACs
        per batch, calibration batches, a baseline artifact per engine and batch), then each compressed (and
        recovered) model, each candidate, and its artifact per engine. Only the cells given are prepared for: the
        runner leaves out those the store already holds.
        """
        admitted: list[tuple[Cell, CompressorConfig, Engine]] = []
        for cell, machine, device in placed:
            self._announce("building the model's reference", tuple(c.id for c, _, _ in placed if c.model == cell.model))
            _quietly(self._baselines.reference, cell.model)
            if cell.kind == "model":
                try:
                    admitted.append((cell, *self._admit(cell, machine, device)))
                except Exception:  # noqa: BLE001 - found again by `timed`, which records it for this cell
                    continue

        def sharing(*same: Callable[[Cell, CompressorConfig, Engine], object]) -> tuple[str, ...]:
            """The ids of the admitted cells that agree with `cell` (the loop's) on each of `same`."""
            mine = [key(cell, config, engine) for key in same]
            return tuple(c.id for c, f, e in admitted if [key(c, f, e) for key in same] == mine)

        baselines = self._baselines
        for cell, config, engine in admitted:
            self._announce(f"measuring the reference for {engine.name}", sharing(_by_model, _by_engine))
            _quietly(baselines.size, cell.model)
            _quietly(baselines.macs_dense, cell.model, cell.batch)
            _quietly(baselines.calibration, cell.model)
            _quietly(baselines.artifact, cell.model, cell.batch, engine)
            if config.input_dependent:
                _quietly(baselines.stream, cell.model)
        for cell, config, _engine in admitted:
            self._announce("compressing the model" + (" and recovering its accuracy" if cell.finetune_steps else ""),
                           sharing(_by_model, _by_training))  # fmt: skip
            _quietly(self._recover, cell, config)
        for cell, config, _engine in admitted:
            self._announce("making the candidate ready for the engines", sharing(_by_model, _by_candidate))
            _quietly(self._candidate, cell, config)
        for cell, config, engine in admitted:
            self._announce(f"exporting it for {engine.name} and measuring its top-1",
                           sharing(_by_model, _by_candidate, _by_engine))  # fmt: skip
            _quietly(self.artifact, cell, config, engine)

    def timed(self, cell: Cell, machine: Mapping[str, Any], device: str) -> Prepared:
        """What `cell` times on a target with the machine facts `machine` and device `device`.

        Raises:
            CompressorLimit: The compressor does not apply to this model, or cannot be timed at this batch.
            EngineLimit: The cell's engine cannot run this candidate, or the target's device cannot run the engine.
        """
        config, engine = self._admit(cell, machine, device)
        artifact = self.artifact(cell, config, engine)
        if artifact.exported.quantized_engine is not None and device == "cuda":
            # torch.ao int8 modules only have CPU kernels: whatever ran on the GPU would not be int8.
            engine_name = artifact.exported.quantized_engine
            reason = f"int8 (torch.ao, {engine_name} engine) has no CUDA kernels; measured on CPU targets"
            return Prepared({}, {}, skip=reason)
        reference = self._baselines.reference(cell.model)
        pair = {
            "id": cell.id,
            "engine": engine.name,
            "baseline": str(self._baselines.artifact(cell.model, cell.batch, engine)),
            "candidate": str(artifact.exported.path),
            "input_shape": list(reference.example_input(cell.batch).shape),
            "quantized_engine": artifact.exported.quantized_engine,
        }
        if not config.input_dependent:
            return Prepared(pair, artifact.fields)
        del pair["input_shape"]
        pair.update(kind="stream", inputs=str(self._baselines.stream(cell.model)))
        return Prepared(pair, artifact.fields, stream=True)

    def _admit(self, cell: Cell, machine: Mapping[str, Any], device: str) -> tuple[CompressorConfig, Engine]:
        """The cell's config resolved for its device and its engine, once the cell is known to be worth preparing.

        Raises:
            CompressorLimit: The compressor does not apply to this model, or cannot be timed at this batch.
            EngineLimit: The target's device cannot run the engine.
        """
        config = _config(cell, machine)
        reference = self._baselines.reference(cell.model)
        try:
            config.check(reference.model)
        except ValueError as error:
            # The run's other models fit this compressor (the config checked that), this one does not.
            raise compressors.CompressorLimit("apply to", str(error)) from None
        engine = engines.get(cell.engine)
        missing = machine_limit(cell, machine, device)
        if missing is not None:
            raise EngineLimit(engine.name, f"target '{cell.target}': {missing}")
        if config.input_dependent and cell.batch != 1:
            # One batched graph cannot leave early for some samples and not others: it would run every exit for all.
            raise compressors.CompressorLimit("time", f"at batch {cell.batch}: its work is decided per input, so it"
                                              " is timed at batch 1 only")  # fmt: skip
        return config, engine

    def artifact(self, cell: Cell, config: CompressorConfig, engine: Engine) -> Artifact:
        """The artifact `engine` times for `cell`, compressed with `config` (resolved for the cell's device).

        Raises:
            EngineLimit: The engine cannot run this candidate.
        """
        candidate = self._candidate(cell, config)
        batch = cell.batch if engine.batch_specific else None
        artifact = self._made.get(("artifact", *_key(config), engine.name, batch),
                              functools.partial(self._export, cell, candidate, engine))  # fmt: skip
        fields = {**candidate.fields, **artifact.fields}
        exits = candidate.exit_facts
        fields["macs"] = exits.macs(cell.batch) if exits is not None else self._macs_of(cell, config, candidate)
        return Artifact(artifact.exported, fields)

    def _export(self, cell: Cell, candidate: _Candidate, engine: Engine) -> Artifact:
        reference = self._baselines.reference(cell.model)
        self._exports += 1
        path = self._directory / f"candidate-{self._exports}.{engine.suffix}"
        exported = engine.candidate(candidate.source, reference.example_input(cell.batch), path)
        if candidate.source.config.input_dependent:
            try:
                check_branches(exported, engine.name)
            except EngineLimit:
                exported.path.unlink(missing_ok=True)
                raise
        return Artifact(exported, self._engine_fields(candidate, engine, exported, reference))

    def _macs_of(self, cell: Cell, config: CompressorConfig, candidate: _Candidate) -> Macs:
        def make() -> Macs:
            macs = macs_report(candidate.measured, self._baselines.reference(cell.model).example_input(cell.batch))
            baseline = self._baselines.macs_dense(cell.model, cell.batch)
            return Macs(dense=macs["macs_dense"], effective=macs["macs_effective"], baseline=baseline)

        return self._made.get(("candidate macs", *_key(config), cell.batch), make)

    def counts(self) -> dict[str, int]:
        """How many compressed models, candidates and artifacts the group has made so far."""
        kinds = [key[0] for key in self._made.values]
        return {"compressed": kinds.count("compressed"), "candidates": kinds.count("candidate"),
                "artifacts": kinds.count("artifact")}  # fmt: skip

    def close(self) -> None:
        """Drop every model and remove every artifact of the group."""
        for key, made in self._made.values.items():
            if key[0] == "artifact":
                made.exported.path.unlink(missing_ok=True)
        self._made.clear()

    def _engine_fields(
        self, candidate: _Candidate, engine: Engine, exported: Exported, reference: Reference
    ) -> dict[str, Any]:
        """What depends on the engine: what executes, its stored bytes, and top-1 through it."""
        test = reference.test
        accuracy = self._made.get(
            ("top1", *_key(candidate.source.config), engine.name),
            lambda: engine.top1(candidate.source, exported, test) if test is not None else None,
        )
        sizes = dict(candidate.sizes)
        sizes["size_stored_bytes"] = exported.stored_bytes
        return {
            "executed_as": exported.executed_as,
            "execution_notes": exported.notes,
            "quantized_engine": exported.quantized_engine,
            "artifact_bytes": exported.path.stat().st_size,
            "sizes": Sizes.measured(sizes),
            "accuracy": Accuracy(
                top1=accuracy,
                baseline=reference.accuracy,
                before_recovery=candidate.accuracy_before,
                note=reference.accuracy_note,
                images=len(test) if test is not None else None,
            ),
        }

    def _candidate(self, cell: Cell, config: CompressorConfig) -> _Candidate:
        return self._made.get(("candidate", *_key(config)), functools.partial(self._make_candidate, cell, config))

    def _make_candidate(self, cell: Cell, config: CompressorConfig) -> _Candidate:
        reference = self._baselines.reference(cell.model)
        compressed, before = self._recover(cell, config)
        measured = config.measured(compressed.model)
        sizes = {**size_report(measured), **_coded_sizes(compressed)}
        fields: dict[str, Any] = {
            "compressor_info": compressed.info,
            "stage_sizes": tuple(
                Sizes.measured({**size_report(s.model), **_coded_sizes(s)}) for s in compressed.stages
            ),
            "baseline_dense_bytes": self._baselines.size(cell.model)["size_dense_bytes"],
        }
        executable = config.finalize(compressed.model)
        exits = None
        if config.input_dependent and reference.test is not None:
            example, baseline_macs = reference.example_input(1), self._baselines.macs_dense(cell.model, 1)
            exits = exit_facts(compressed.model, executable.model, reference.test, example, baseline_macs)
            fields["compressor_info"] = {**compressed.info, **exits.info()}
        # Static int8's prepared model carries torch's observers; the model it was made from is the float one.
        float_model = reference.model if config.int8_scheme == "static" else compressed.model
        source = Source(config, executable, float_model, self._baselines.calibration(cell.model))
        return _Candidate(source, compressed, measured, before, sizes, fields, exits)

    def _recover(self, cell: Cell, config: CompressorConfig) -> tuple[Compressed, float | None]:
        """The compressed model (recovered, or trained as it was compressed, if the cell asks) and its accuracy
        before recovery, made once."""
        reference = self._baselines.reference(cell.model)

        def make() -> tuple[Compressed, float | None]:
            calibration = self._baselines.calibration(cell.model)
            return compress(cell, config, reference, reference.example_input(1), calibration)

        return self._made.get(("compressed", *config.training_key()), make)
