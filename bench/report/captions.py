"""What a figure's numbers are and how they were measured, said from its records: every caption ends with it.

A figure read alone (a PNG in a slide, the HTML report on a phone) must still say where its numbers come from:
the target and its CPU, the engine, threads and batch, and how many interleaved rounds each timing took.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.records import CellRecord, LayersRecord, ModelRecord

__all__ = ["measured_how", "rounds_text"]

_ENGINE_NAMES = {"torchscript": "TorchScript", "onnxruntime": "ONNX Runtime"}


def _where(record: CellRecord) -> str:
    cpu = record.machine.get("cpu_model") if record.machine else None
    gpu = (record.machine.get("cuda") or {}).get("name") if record.machine else None
    device = f" ({gpu or cpu})" if gpu or cpu else ""
    engine = _ENGINE_NAMES.get(record.engine, record.engine)
    threads = f"{record.threads} thread{'s' if record.threads != 1 else ''}"
    return f"{record.target}{device}, {engine}, {threads}, batch {record.batch}"


def _rounds(record: CellRecord) -> list[int]:
    if isinstance(record, ModelRecord) and record.timing is not None:
        return [record.timing.rounds]
    if isinstance(record, LayersRecord):
        return [layer.rounds for layer in record.layers]
    return []


def rounds_text(records: Sequence[CellRecord]) -> str:
    """ "20-60 interleaved rounds per timing (median 31)", or "" when no record was timed."""
    rounds = sorted(r for record in records for r in _rounds(record))
    if not rounds:
        return ""
    median = rounds[len(rounds) // 2]
    span = f"{rounds[0]}" if rounds[0] == rounds[-1] else f"{rounds[0]}-{rounds[-1]}"
    return f"{span} interleaved rounds per timing (median {median})"


def measured_how(records: Sequence[CellRecord]) -> str:
    """One sentence: where the records ran (each place once) and how many rounds their timings took.

    Example: "Measured on cpu (AMD EPYC 7B13), TorchScript, 1 thread, batch 1; 12 cells, 20-60 interleaved rounds
    per timing (median 31)."
    """
    if not records:
        return ""
    places = list(dict.fromkeys(_where(record) for record in records))
    timed = rounds_text(records)
    count = f"{len(records)} cell{'s' if len(records) != 1 else ''}"
    return f"Measured on {'; '.join(places)}; {count}" + (f", {timed}" if timed else "") + "."
