"""Paired re-measurement: a doubtful cell's two runs' artifacts, timed against each other in one worker session.

Two runs on a shared machine cannot be compared by their absolute times: between them its speed moves by more than
a real regression (two quiet runs of one commit here: the same cell at 0.58x-1.32x), and a busy phase flags most
cells noisy. Inside a cell the suite already has the remedy, interleaving the candidate with its baseline in one
worker so that whatever slows the machine slows both sides. This module uses it across runs, and only where it is
needed (asv's `continuous` rebuilds and interleaves every benchmark of two commits): for each cell whose timing
came out regressed, improved or inconclusive, the BASE run's candidate artifact and the CAND run's are timed as one
pair, on the cell's target, engine, threads and input shape, with the CAND run's timing protocol. When the two
runs' reference artifacts differ as well, they are timed as a second pair, and the speedup's change is the ratio of
the two pairs' changes; when they are the same file, the speedup moves exactly opposite to the latency.

The pair's per-round ratio and its 95% interval decide, as an equivalence test with threshold t:
- changed: the whole interval lies beyond t/2 (above 1 + t/2, or below 1 / (1 + t/2)). A paired interval is a
  few percent wide, so a change of t is caught nearly always, and two copies of the same bytes (A/A) must be
  timed t/2 apart throughout their interval to raise a false alarm;
- unchanged: the whole interval lies within t (between 1 / (1 + t) and 1 + t);
- neither: the pair is timed again, up to `tries` sessions, and if no session decides, the cell is inconclusive.

A session that other processes kept busy, or that ran throttled, decides nothing: interleaving protects a pair
from slow drifts, not from a neighbour taking time slices from one side's blocks more than the other's (two copies
of one file, timed while other work loaded the 2 cores here, came out 8% apart with an interval excluding 1).

The artifacts come from the runs' artifact folders (`bench.store.artifacts`), by the digests in the records; a
cell whose files were not kept keeps its verdict, with a note saying why it was not re-measured.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Any, TextIO

import targets
from bench.compare.comparison import Comparison
from bench.compare.metrics import MetricChange
from bench.compare.rules import Rules
from bench.compare.verdicts import NOT_REMEASURED, UNDECIDED, CellComparison, judged
from bench.records import ModelRecord, Timing
from bench.store.artifacts import ArtifactFolder
from targets import Target, TargetSpec

__all__ = ["Remeasure", "remeasure", "doubtful"]

_TIMING = ("latency", "speedup")


@dataclass(frozen=True)
class Remeasure:
    """Where the two runs' artifacts are, how to time them, and how many sessions a cell may take.

    Attributes:
        base_folders, cand_folders: the artifact folders searched for each side's files, in order.
        timing: the latency protocol's knobs for each pair (the CAND run's `timing`; empty: the worker's defaults).
        target_specs: the targets by name, as the CAND run defined them.
        tries: sessions per cell until one decides.
    """

    base_folders: tuple[ArtifactFolder, ...]
    cand_folders: tuple[ArtifactFolder, ...]
    timing: Mapping[str, Any]
    target_specs: Mapping[str, TargetSpec]
    tries: int = 3


def doubtful(cell: CellComparison) -> bool:
    """Whether a cell's timing needs a re-measure: both sides are ok model records and latency or speedup came out
    regressed, improved or inconclusive."""
    if not (isinstance(cell.base, ModelRecord) and isinstance(cell.cand, ModelRecord)):
        return False
    outcomes = {cell.metrics[metric].outcome for metric in _TIMING if metric in cell.metrics}
    return bool(outcomes & {"regressed", "improved", "inconclusive"})


def remeasure(comparison: Comparison, how: Remeasure, stream: TextIO = sys.stderr) -> Comparison:
    """The comparison with every doubtful cell's timing decided by a paired re-measure on this machine."""
    chosen = [cell for cell in comparison.cells if doubtful(cell)]
    if not chosen:
        return comparison
    done: dict[tuple[str, str], CellComparison] = {}
    with ExitStack() as stack:
        opened: dict[str, Target] = {}
        for number, cell in enumerate(chosen, 1):
            stream.write(f"re-measuring {number}/{len(chosen)}: {cell.label}\n")
            done[cell.key] = _remeasured(cell, how, comparison.rules, lambda name: _target(stack, opened, how, name))
    return replace(comparison, cells=tuple(done.get(cell.key, cell) for cell in comparison.cells))


def _target(stack: ExitStack, opened: dict[str, Target], how: Remeasure, name: str) -> Target | str:
    """The open target `name`, or why it cannot time here."""
    if name not in opened:
        spec = how.target_specs.get(name) or targets.BUILTIN_TARGETS.get(name)
        if spec is None:
            return f"target not defined: '{name}' is not a target of the CAND run"
        opened[name] = stack.enter_context(targets.create(spec))
    target = opened[name]
    available, reason = target.available()
    return target if available else f"target unavailable: '{name}': {reason}"


def _remeasured(
    cell: CellComparison, how: Remeasure, rules: Rules, target_of: Callable[[str], Target | str]
) -> CellComparison:
    """The cell with its timing decided by paired sessions, or with a note saying why it could not be re-measured."""
    base, cand = cell.base, cell.cand
    assert isinstance(base, ModelRecord) and isinstance(cand, ModelRecord)
    files = _files(base, cand, how)
    target = target_of(cand.target) if not isinstance(files, str) else files
    if isinstance(files, str) or isinstance(target, str):
        why = files if isinstance(files, str) else target
        return replace(cell, why="; ".join(filter(None, [cell.why, f"{NOT_REMEASURED}{why}"])))
    assert cand.artifacts is not None
    pairs = [_pair("candidate", files["base candidate"], files["cand candidate"], cand, how, rules.threshold)]
    if "base baseline" in files:
        pairs.append(_pair("baseline", files["base baseline"], files["cand baseline"], cand, how, rules.threshold))
    sessions: list[list[Timing]] = []
    decided: tuple[MetricChange, MetricChange] | None = None
    for _ in range(how.tries):
        try:
            results = target.time_pairs(pairs, cand.threads)
        except targets.TargetError as error:
            return replace(cell, why="; ".join(filter(None, [cell.why, f"{NOT_REMEASURED}target failed: {error}"])))
        sessions.append([Timing.from_worker(result) for result in results])
        if any(_disturbed(timing) for timing in sessions[-1]):
            continue  # busy or throttled: such a session decides nothing, either way
        decided = _decide(sessions[-1], rules.threshold)
        if all(change.outcome != "inconclusive" for change in decided):
            break
    notes = [_summary(sessions, cand.artifacts.candidate == base.artifacts.candidate)]  # type: ignore[union-attr]
    if decided is None:
        shown = "machine busy"
        decided = (MetricChange("latency", "inconclusive", shown), MetricChange("speedup", "inconclusive", shown))
        notes.append(f"{UNDECIDED}the machine was busy or throttled in all {len(sessions)} session(s)")
    elif any(change.outcome == "inconclusive" for change in decided):
        notes.append(f"{UNDECIDED}the interval is neither within {rules.threshold:.0%} nor beyond half of it")
    changes = {**cell.metrics, "latency": decided[0], "speedup": decided[1]}
    notes += [change.note for name, change in cell.metrics.items() if name not in _TIMING and change.note]
    return judged(cell.label, base, cand, changes, notes)


def _files(base: ModelRecord, cand: ModelRecord, how: Remeasure) -> dict[str, str] | str:
    """The files to time, by role ("base candidate", ...), or why they cannot be: digests or files missing."""
    if base.artifacts is None or cand.artifacts is None:
        side = "BASE" if base.artifacts is None else "CAND"
        return f"no artifact digests: {side}'s record names none (stream cells, runs from before they were kept)"
    if base.artifacts.input_shape != cand.artifacts.input_shape:
        return f"input shapes differ: {base.artifacts.input_shape} vs {cand.artifacts.input_shape}"
    wanted = {"base candidate": (base.artifacts.candidate, how.base_folders),
              "cand candidate": (cand.artifacts.candidate, how.cand_folders)}  # fmt: skip
    if base.artifacts.baseline != cand.artifacts.baseline:
        wanted["base baseline"] = (base.artifacts.baseline, how.base_folders)
        wanted["cand baseline"] = (cand.artifacts.baseline, how.cand_folders)
    files: dict[str, str] = {}
    for role, (sha256, folders) in wanted.items():
        found = next((path for folder in folders if (path := folder.find(sha256)) is not None), None)
        if found is None:
            where = ", ".join(str(folder.path) for folder in folders) or "no artifact folder"
            side, kind = role.split()
            return f"artifacts not kept: {side.upper()}'s {kind} {sha256[:12]} is in none of {where}"
        files[role] = str(found)
    return files


def _pair(
    role: str, base_file: str, cand_file: str, cand: ModelRecord, how: Remeasure, threshold: float
) -> dict[str, Any]:
    """A worker pair timing BASE's file (as its baseline) against CAND's (as its candidate).

    The rounds stop early only once the interval is a fifth of the threshold wide on each side (1% at 5%), not at
    the run's own stopping width (2%): a re-measure decides at half the threshold, so a change at the threshold must
    leave its interval clear of that (stopping at 2%, a real +4.3% slowdown went undecided or missed in 2 of 10
    tries of `ci/gate_power.py` on this quiet 2-core VM).
    """
    assert cand.artifacts is not None
    ci_rel = min(float(how.timing.get("ci_rel", 1.0)), threshold / 5)
    return {
        "id": f"remeasure-{role}-{cand.cell_id}", "baseline": base_file, "candidate": cand_file,
        "input_shape": list(cand.artifacts.input_shape), "engine": cand.engine,
        "quantized_engine": cand.quantized_engine, **how.timing, "ci_rel": ci_rel, "seed": 0,
    }  # fmt: skip


def _disturbed(timing: Timing) -> bool:
    """Whether other work or heat disturbed a session: then its interval cannot be trusted either way (two copies of
    one file, timed interleaved while two other processes shared the 2 cores here, came out 1.08 [1.03, 1.12])."""
    return bool(timing.busy or timing.throttled)


def _interval(timing: Timing) -> tuple[float, float, float]:
    """CAND / BASE of one pair (the inverse of the worker's speedup) with its 95% interval."""
    low, high = timing.speedup_ci_low, timing.speedup_ci_high
    ratio = 1.0 / timing.speedup_median
    if low is None or high is None:
        return ratio, 0.0, math.inf
    return ratio, 1.0 / high, 1.0 / low


def _decide(session: Sequence[Timing], threshold: float) -> tuple[MetricChange, MetricChange]:
    """The latency and speedup changes one session shows (see the module's rule)."""
    latency = _interval(session[0])
    if len(session) == 1:  # the same reference on both sides: the speedup moves exactly opposite
        ratio, low, high = latency
        speedup = (1.0 / ratio, 1.0 / high, 1.0 / low if low > 0 else math.inf)
    else:  # the speedup's change: the reference's change over the candidate's, their log half-widths combined
        reference = _interval(session[1])
        centre = math.log(reference[0] / latency[0])
        half = math.hypot(*(math.log(high / low) / 2 for _, low, high in (latency, reference)))
        speedup = (math.exp(centre), math.exp(centre - half), math.exp(centre + half))
    return _change("latency", latency, threshold, +1), _change("speedup", speedup, threshold, -1)


def _change(metric: str, interval: tuple[float, float, float], threshold: float, worse: int) -> MetricChange:
    ratio, low, high = interval
    shown = f"{ratio:.2f} [{low:.2f}, {high:.2f}] paired"
    changed = 1 + threshold / 2
    if low > changed or high < 1 / changed:
        direction = 1 if low > changed else -1
        outcome = "regressed" if direction == worse else "improved"
        note = f"{metric} {ratio - 1:+.1%} paired (interval beyond {threshold / 2:.1%})"
    elif 1 / (1 + threshold) <= low and high <= 1 + threshold:
        outcome, note = "unchanged", ""
    else:
        outcome, note = "inconclusive", ""
    return MetricChange(metric, outcome, shown, note, ratio, low, high)


def _summary(sessions: Sequence[Sequence[Timing]], same_bytes: bool) -> str:
    """What the re-measure did, in a few words for the cell's note."""
    rounds = sum(timing.rounds for session in sessions for timing in session)
    busy = sorted({flag for session in sessions for timing in session for flag in timing.flags})
    parts = [f"{len(sessions)} session(s)", f"{rounds} rounds"]
    if same_bytes:
        parts.append("same candidate bytes")
    if busy:
        parts.append(f"flagged {'/'.join(busy)}")
    return f"re-measured paired ({', '.join(parts)})"
