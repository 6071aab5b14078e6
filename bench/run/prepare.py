"""Host work of one training group of the plan: compress and recover once, prepare each candidate once, export
each artifact once, whatever the order of the group's cells (see `bench.run.plan`).

What is made lives until the group is done (`close`), so memory and disk hold one group at a time; a group holds
one compressed model per device resolution of its config (int8 "auto" packs for x86 here, qnnpack on ARM).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

import compressors
from bench.engines import Engine, EngineLimit, Exported, Source
from bench.measure.accuracy import top1
from bench.measure.encodings import coded_sizes
from bench.measure.flops import macs_report
from bench.measure.size import size_report
from bench.models.references import Reference, References
from bench.models.registry import resolve_model
from bench.records import Accuracy, Macs, Sizes
from bench.recovery.job import RecoveryJob
from bench.recovery.lending import lend_training
from bench.recovery.methods import recover
from bench.run.exit_facts import ExitFacts, exit_facts
from bench.run.matrix import Cell
from compressors import Compressed

__all__ = ["Preparation", "Artifact"]


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


def _coded_sizes(compressed: Compressed) -> dict[str, int]:
    if not compressed.codes:
        return {}
    return coded_sizes({k: v.detach() for k, v in compressed.model.state_dict().items()}, compressed.codes)


def _key(config: compressors.CompressorConfig) -> tuple[Any, ...]:
    return config.name, tuple(sorted(config.to_dict().items()))


class Preparation:
    """The models and artifacts of one training group, made on first use and kept until `close`."""

    def __init__(self, references: References, directory: Path) -> None:
        """Start empty.

        Args:
            references: The run's references (the uncompressed models, their data and their artifacts).
            directory: Where this group's artifacts live; emptied by `close`.
        """
        self._references = references
        self._directory = directory
        self._recovered: dict[str, tuple[Compressed, float | None]] = {}
        self._candidates: dict[tuple[Any, ...], _Candidate] = {}
        self._artifacts: dict[tuple[Any, ...], Artifact] = {}
        # Why an engine cannot run a candidate, kept so the candidate's other cells skip without trying again.
        self._limits: dict[tuple[Any, ...], EngineLimit] = {}
        self._accuracy: dict[tuple[Any, ...], float | None] = {}
        self._macs: dict[tuple[Any, ...], Macs] = {}

    def artifact(self, cell: Cell, config: compressors.CompressorConfig, engine: Engine) -> Artifact:
        """The artifact `engine` times for `cell`, compressed with `config` (resolved for the cell's device).

        Raises:
            EngineLimit: The engine cannot run this candidate.
        """
        candidate = self._candidate(cell, config)
        batch = cell.batch if engine.batch_specific else None
        key = (*_key(config), engine.name, batch)
        if key in self._limits:
            raise self._limits[key]
        if key not in self._artifacts:
            reference = self._references.get(cell.model)
            path = self._directory / f"candidate-{len(self._artifacts) + len(self._limits) + 1}.{engine.suffix}"
            try:
                exported = engine.candidate(candidate.source, reference.example_input(cell.batch), path)
            except EngineLimit as limit:
                self._limits[key] = limit
                raise
            self._artifacts[key] = Artifact(exported, self._engine_fields(candidate, engine, exported, reference))
        artifact = self._artifacts[key]
        fields = {**candidate.fields, **artifact.fields}
        exits = candidate.exit_facts
        fields["macs"] = exits.macs(cell.batch) if exits is not None else self._macs_of(cell, config, candidate)
        return Artifact(artifact.exported, fields)

    def _macs_of(self, cell: Cell, config: compressors.CompressorConfig, candidate: _Candidate) -> Macs:
        key = (*_key(config), cell.batch)
        if key not in self._macs:
            reference = self._references.get(cell.model)
            macs = macs_report(candidate.measured, reference.example_input(cell.batch))
            self._macs[key] = Macs(
                dense=macs["macs_dense"], effective=macs["macs_effective"], baseline=reference.macs_dense(cell.batch)
            )
        return self._macs[key]

    def counts(self) -> dict[str, int]:
        """How many compressed models, candidates and artifacts the group has made so far."""
        return {"compressed": len(self._recovered), "candidates": len(self._candidates),
                "artifacts": len(self._artifacts)}  # fmt: skip

    def close(self) -> None:
        """Drop every model and remove every artifact of the group."""
        for artifact in self._artifacts.values():
            artifact.exported.path.unlink(missing_ok=True)
        self._recovered.clear()
        self._candidates.clear()
        self._artifacts.clear()
        self._limits.clear()
        self._accuracy.clear()
        self._macs.clear()

    def _engine_fields(
        self, candidate: _Candidate, engine: Engine, exported: Exported, reference: Reference
    ) -> dict[str, Any]:
        """What depends on the engine: what executes, its stored bytes, and top-1 through it."""
        accuracy_key = (_key(candidate.source.config), engine.name)
        if accuracy_key not in self._accuracy:
            self._accuracy[accuracy_key] = (
                engine.top1(candidate.source, exported, reference.test) if reference.test is not None else None
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
                top1=self._accuracy[accuracy_key],
                baseline=reference.accuracy,
                before_recovery=candidate.accuracy_before,
                note=reference.accuracy_note,
                images=len(reference.test) if reference.test is not None else None,
            ),
        }

    def _candidate(self, cell: Cell, config: compressors.CompressorConfig) -> _Candidate:
        key = _key(config)
        if key not in self._candidates:
            reference = self._references.get(cell.model)
            compressed, before = self._recover(cell, config, reference)
            measured = config.measured(compressed.model)
            sizes = {**size_report(measured), **_coded_sizes(compressed)}
            fields: dict[str, Any] = {
                "compressor_info": compressed.info,
                "stage_sizes": tuple(
                    Sizes.measured({**size_report(s.model), **_coded_sizes(s)}) for s in compressed.stages
                ),
                "baseline_dense_bytes": reference.size()["size_dense_bytes"],
            }
            executable = config.finalize(compressed.model)
            exits = None
            if config.input_dependent and reference.test is not None:
                example = reference.example_input(1)
                exits = exit_facts(compressed.model, executable.model, reference.test, example, reference.macs_dense(1))
                fields["compressor_info"] = {**compressed.info, **exits.info()}
            # Static int8's prepared model carries torch's observers; the model it was made from is the float one.
            float_model = reference.model if config.int8_scheme == "static" else compressed.model
            source = Source(config, executable, float_model, reference.calibration())
            self._candidates[key] = _Candidate(source, compressed, measured, before, sizes, fields, exits)
        return self._candidates[key]

    def _recover(
        self, cell: Cell, config: compressors.CompressorConfig, reference: Reference
    ) -> tuple[Compressed, float | None]:
        """The compressed model (recovered, or trained as it was compressed, if the cell asks) and its accuracy
        before recovery, made once."""
        key = config.training_key()
        if key not in self._recovered:
            # Compression does not depend on the batch the model is timed at; batch 1 traces every graph alike.
            example, calibration = reference.example_input(1), reference.calibration()
            settings = dict(cell.recovery)
            seed = int(settings.get("seed", 0))
            if config.trains:
                if reference.train is None or not cell.finetune_steps:
                    raise compressors.CompressorLimit(
                        "train", f"{config.name} trains as it compresses: it needs a model the suite trains (a bundled"
                        " data set, no --data) and finetune_steps > 0",
                    )  # fmt: skip
                training = lend_training(reference, cell.finetune_steps, seed)
                self._recovered[key] = (config.apply_trained(reference.model, example, calibration, training), None)
                return self._recovered[key]
            compressed = config.apply(reference.model, example, calibration)
            before = None
            if reference.test is not None:
                before = top1(compressed.model, reference.test)
                if cell.finetune_steps and reference.train is not None:
                    job = RecoveryJob(
                        compressed.model, compressed.masks, reference.model, reference.train, cell.finetune_steps,
                        seed, settings, reference.reference_steps, example, resolve_model(cell.model).recipe,
                    )  # fmt: skip
                    facts = recover(job)  # the method's own facts (the steps it really trained) beside its name
                    if compressed.codes:
                        # Training moves weights off their quantization grid; quantizing the recovered weights again
                        # keeps the stored codes and the evaluated model one and the same.
                        compressed = config.apply(compressed.model, example, calibration)
                    if len(facts) > 1:
                        compressed.info["recovery"] = facts
            self._recovered[key] = (compressed, before)
        return self._recovered[key]
