"""`python -m bench merge A.sqlite B.sqlite ... --into M.sqlite`: gather stores, reassembling sharded runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.store.merge import merge_stores

__all__ = ["register"]


def register(verbs: Any) -> None:
    """Add the `merge` verb to the parser's subcommands."""
    merge = verbs.add_parser(
        "merge", help="merge stores into one; the shard runs of a matrix also become one run of the whole matrix"
    )
    merge.add_argument("sources", nargs="*", type=Path, metavar="STORE", help="stores to merge (read, never changed)")
    merge.add_argument(
        "--into", type=Path, required=True, metavar="M.sqlite", help="the store to create or add the runs to"
    )
    merge.set_defaults(handler=_merge)


def _merge(args: argparse.Namespace) -> int:
    outcome = merge_stores(args.sources, args.into)
    print("\n".join(outcome.lines()))
    return 0
