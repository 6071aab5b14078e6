"""Split a matrix into N shards that N runners measure without talking to each other.

Every runner expands the same matrix and computes the same assignment from it alone, so `--shard K/N` on N
machines covers each cell exactly once. Cells that share a compressed model (`bench.run.plan.training_key`) stay in
one shard: the target, engine, thread count and batch of a cell, and the execution fields of its compressor
(dense or CSR of one sparsity), do not change the compressed and fine-tuned weights, so splitting them would
fine-tune the same model twice and let the dense and the CSR cell of one sparsity evaluate different weights.

Balance: groups go, largest first and then in the order of a digest of their key, to the shard with the fewest
cells so far (lowest index on a tie). The shards' cell counts then differ by at most the size of the largest
group, which for the default matrix is two cells, while hashing groups mod N leaves a small matrix lopsided.
Each shard keeps the matrix's own order of cells. A model's
reference is trained once per machine and cached (see `bench.models.references`), so shards on one machine share it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from bench.config.shards import Shard
from bench.run.matrix import Cell
from bench.run.plan import training_key

__all__ = ["assign", "shard_cells", "matrix_digest", "shard_json"]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def assign(cells: Sequence[Cell], count: int) -> list[list[Cell]]:
    """The cells of each of `count` shards (index 0 is shard 1), each in the order of `cells`.

    Depends only on the set of cells, not on their order, so runners that list a matrix differently still agree.
    """
    groups: dict[str, set[str]] = {}
    for cell in cells:
        groups.setdefault(training_key(cell), set()).add(cell.id)
    loads = [0] * count
    shard_of: dict[str, int] = {}
    for _key, ids in sorted(groups.items(), key=lambda item: (-len(item[1]), _digest(item[0]))):
        lightest = min(range(count), key=lambda index: (loads[index], index))
        loads[lightest] += len(ids)
        shard_of.update(dict.fromkeys(ids, lightest))
    shards: list[list[Cell]] = [[] for _ in range(count)]
    for cell in cells:
        shards[shard_of[cell.id]].append(cell)
    return shards


def shard_cells(cells: Sequence[Cell], shard: Shard) -> list[Cell]:
    """The cells `shard` measures, in the order of `cells`."""
    return assign(cells, shard.count)[shard.index - 1]


def matrix_digest(cells: Sequence[Cell]) -> str:
    """Names the whole matrix: shards whose runs carry the same digest are parts of one matrix."""
    return _digest("\n".join(sorted({cell.id for cell in cells})))[:16]


def shard_json(cells: Sequence[Cell], shard: Shard) -> dict[str, Any]:
    """What a sharded run stores in its config, so `bench.store.merge` can reassemble the matrix.

    `sizes` holds every shard's cell count: a shard with no cells stores no run, and merge still knows the
    matrix is complete without it.
    """
    return {
        "index": shard.index,
        "count": shard.count,
        "matrix": matrix_digest(cells),
        "sizes": [len(part) for part in assign(cells, shard.count)],
    }
