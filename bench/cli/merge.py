"""`python -m bench merge A.sqlite B.sqlite ... --into M.sqlite`: gather stores, reassembling sharded runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.cli.support import Parser, Verbs

__all__ = ["register", "merge_into"]


def register(verbs: Verbs) -> None:
    """Add the `merge` verb to the parser's subcommands."""
    verbs.add_parser(
        "merge", help="merge stores into one; the shard runs of a matrix also become one run of the whole matrix",
        arguments=_arguments,
    )  # fmt: skip


def _arguments(merge: Parser) -> None:
    merge.add_argument("sources", nargs="*", type=Path, metavar="STORE", help="stores to merge (read, never changed)")
    merge.add_argument(
        "--into", type=Path, required=True, metavar="M.sqlite", help="the store to create or add the runs to"
    )
    merge.set_defaults(handler=lambda args: merge_into(args.sources, args.into))


def merge_into(sources: Sequence[Path], into: Path) -> int:
    """Merge the stores `sources` into the store `into` (made if absent) and print what each run became. Returns 0."""
    from bench.store.merge import merge_stores

    outcome = merge_stores(sources, into)
    print("\n".join(outcome.lines()))
    return 0
