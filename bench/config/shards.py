"""`--shard K/N`: the share of a matrix one runner measures, as the config holds it (the assignment of cells to
shards is `bench.run.shards`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bench.errors import BenchError

__all__ = ["Shard", "MAX_SHARDS", "parse_shard"]

MAX_SHARDS = 1000
"""More runners than this would each get a handful of cells at most, and every runner stores every shard's size."""
_FORM = re.compile(r"([0-9]+)/([0-9]+)")


@dataclass(frozen=True)
class Shard:
    """Shard `index` (1-based) of `count`."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ValueError(f"shard index {self.index} is not in 1..{self.count}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """`K/N` -> Shard(K, N).

    Raises:
        BenchError: not two integers separated by a slash, K outside 1..N, or N above MAX_SHARDS.
    """
    match = _FORM.fullmatch(text.strip())
    if match is None or not 1 <= int(match[1]) <= int(match[2]):
        raise BenchError(f"--shard expects K/N with 1 <= K <= N, got '{text}'")
    if int(match[2]) > MAX_SHARDS:
        raise BenchError(f"--shard: at most {MAX_SHARDS} shards, got '{text}'")
    return Shard(int(match[1]), int(match[2]))
