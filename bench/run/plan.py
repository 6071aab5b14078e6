"""The matrix as a plan of groups, so host work is done once per group whatever order the matrix lists cells in.

A model cell's host work has three levels, each shared by the next: the compressed (and recovered) model, which
depends on the model, the compressor without its execution fields, the training and the user's assets; the
prepared candidate, which adds the execution fields; and an artifact per engine. Targets, threads and batch only
say where and how the artifact is timed. `plan` groups the cells by the first level (a `TrainingGroup`) and
orders each group's cells by candidate, engine, target, threads and batch; `bench.run.prepare.Preparation` makes a
group's models and artifacts before its cells are timed, and drops them when the group is done.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import compressors
from bench.run.matrix import Cell

__all__ = ["TrainingGroup", "plan", "training_key"]


def training_key(cell: Cell) -> str:
    """What the cells of one compressed model share: the cell without target, engine, threads, batch and the
    compressor's execution fields."""
    execution = compressors.get(cell.compressor).execution_fields if cell.compressor in compressors.names() else ()
    identity: dict[str, Any] = cell.to_json()
    for placement in ("target", "engine", "threads", "batch"):
        del identity[placement]
    identity["params"] = {key: value for key, value in identity["params"].items() if key not in execution}
    return json.dumps(identity, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class TrainingGroup:
    """Cells that share one compressed model, in the order they run: by candidate, engine, target, threads, batch.

    A layer-sweep cell is a group of its own: it compresses no model.
    """

    key: str
    cells: tuple[Cell, ...]


def plan(cells: Sequence[Cell]) -> list[TrainingGroup]:
    """Group `cells` by compressed model, groups in the order of their first cell."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        key = cell.id if cell.kind == "layers" else training_key(cell)
        groups.setdefault(key, []).append(cell)
    return [TrainingGroup(key, tuple(sorted(members, key=_run_order(members)))) for key, members in groups.items()]


def _run_order(members: list[Cell]) -> Any:
    """Sort key: the candidate first appearance order, then engine, target, threads, batch in matrix order."""
    firsts: dict[Any, int] = {}
    for position, cell in enumerate(members):
        for level in _levels(cell):
            firsts.setdefault(level, position)
    return lambda cell: tuple(firsts[level] for level in _levels(cell))


def _levels(cell: Cell) -> tuple[Any, ...]:
    candidate = (cell.compressor, cell.params)
    return (
        ("candidate", candidate),
        ("engine", candidate, cell.engine),
        ("target", candidate, cell.engine, cell.target),
        ("threads", candidate, cell.engine, cell.target, cell.threads),
        ("batch", candidate, cell.engine, cell.target, cell.threads, cell.batch),
    )
