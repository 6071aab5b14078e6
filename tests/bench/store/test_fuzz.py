"""A store fuzz: byte flips, truncations and row edits on copies of real stores; every read verb either works or
answers with one line, never a traceback, and the original is untouched.

The fast suite runs a bounded number of examples; `-m slow` runs a deeper search of the same properties.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bench.store.database import open_store
from tests.bench.conftest import run_main
from tests.bench.record_factory import layers_record, model_record
from tests.bench.store.test_files import FIXTURE

LIGHT_VERBS = (["list", "runs"], ["export", "{run}", "--format", "json"], ["export", "{run}", "--format", "csv"])
REPORT = (["report", "{run}"],)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _current_store(directory: Path) -> Path:
    """A store written by this suite: model and layer records, ok and failed, in two runs."""
    path = directory / "current.sqlite"
    with open_store(path) as store:
        store.start_run("r1", {"models": ["m"]}, [], {}, {"commit": "abc"})
        for record in (model_record(top1=0.9),
                       model_record("prune.channel", {"macs_removed": 0.5}, theoretical=2.0, speedup=1.7),
                       model_record("quant.bits", {"bits": 4}, status="failed"),
                       layers_record("cpu", {"sparsity": 0.9}, [0.5, 2.0])):  # fmt: skip
            store.add_record("r1", record)
        store.finish_run("r1", "finished")
        store.start_run("r2", {"models": ["m"]}, [], {}, {})
    return path


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """Each store to mutate, with the run whose records the verbs read."""
    directory = tmp_path_factory.mktemp("fuzz-bases")
    return {"version-1 fixture": (FIXTURE, "20261201-075040-29f8"), "current": (_current_store(directory), "r1")}


def _flip(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    mutable = bytearray(data)
    for offset, mask in flips:
        mutable[offset % len(mutable)] ^= mask
    return bytes(mutable)


def _edit_json(text: str, draw: st.DrawFn) -> str:
    """The row's JSON with one key dropped or one value replaced, at any depth; or plain garbage."""
    if draw(st.booleans()):
        return draw(st.text(max_size=30))
    value: Any = json.loads(text)
    node = value
    while isinstance(node, dict) and node:
        key = draw(st.sampled_from(sorted(node)))
        if not isinstance(node[key], dict) or draw(st.booleans()):
            if draw(st.booleans()):
                del node[key]
            else:
                node[key] = draw(JSON_VALUES)
            break
        node = node[key]
    return json.dumps(value, allow_nan=True)


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, Callable[[Path], None]]:
    """One way a store file goes bad, as a description and a function that does it to a copy."""
    kind = draw(st.sampled_from(["flip", "truncate", "record", "run", "link", "drop"]))
    if kind == "flip":
        flips = draw(st.lists(st.tuples(st.integers(0, 2**20), st.integers(1, 255)), min_size=1, max_size=20))
        return kind, lambda path: path.write_bytes(_flip(path.read_bytes(), flips))
    if kind == "truncate":
        fraction = draw(st.floats(0, 1, exclude_max=True))
        return kind, lambda path: path.write_bytes(path.read_bytes()[: int(fraction * path.stat().st_size)])
    pick = draw(st.integers(0, 10**6))

    def edit(path: Path) -> None:
        db = sqlite3.connect(path)
        with db:
            if kind == "record":
                rows = db.execute("SELECT record_id, record_json FROM records ORDER BY record_id").fetchall()
                record_id, text = rows[pick % len(rows)]
                db.execute(
                    "UPDATE records SET record_json = ? WHERE record_id = ?", (_edit_json(text, draw), record_id)
                )
            elif kind == "run":
                column = draw(st.sampled_from(["config_json", "host_json", "commit_json", "status", "finished_at"]))
                db.execute(f"UPDATE runs SET {column} = ?", (draw(st.text(max_size=12)),))
            elif kind == "link":
                db.execute("UPDATE run_records SET record_id = record_id + ?", (draw(st.integers(-5, 5)),))
            else:
                db.execute(f"DROP TABLE {draw(st.sampled_from(['records', 'run_records']))}")
        db.close()

    return kind, edit


def _check_verbs(
    base: tuple[Path, str], mutation: tuple[str, Callable[[Path], None]], verbs: tuple[list[str], ...]
) -> None:
    path, run_id = base
    original = _sha(path)
    kind, mutate = mutation
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "store" / "bench.sqlite"
        copy.parent.mkdir()
        shutil.copyfile(path, copy)
        mutate(copy)
        for verb in verbs:
            args = [word.format(run=run_id) for word in verb] + ["--store", str(copy)]
            args += ["--output", f"{scratch}/report"] if verb[0] == "report" else []
            result = run_main(args)  # an exception escaping the CLI fails the example
            lines = result.err.splitlines()
            assert result.code in (0, 2), (kind, verb, result)
            if result.code == 2:
                assert (
                    lines
                    and lines[-1].startswith("error: ")
                    and all(not line.startswith("Traceback") for line in lines)
                )
            assert all(line.split(":")[0] in ("error", "warning", "note") for line in lines), (kind, verb, lines)
            event(f"{kind}: {verb[0]} exit {result.code}")
    assert _sha(path) == original


FAST = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
DEEP = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FAST
@given(base=st.sampled_from(["version-1 fixture", "current"]), mutation=mutations())
def test_light_verbs_on_mutated_stores(
    bases: dict[str, tuple[Path, str]], base: str, mutation: tuple[str, Callable[[Path], None]]
) -> None:
    _check_verbs(bases[base], mutation, LIGHT_VERBS)


@settings(FAST, max_examples=25)
@given(base=st.sampled_from(["version-1 fixture", "current"]), mutation=mutations())
def test_report_on_mutated_stores(
    bases: dict[str, tuple[Path, str]], base: str, mutation: tuple[str, Callable[[Path], None]]
) -> None:
    _check_verbs(bases[base], mutation, REPORT)


@pytest.mark.slow
@DEEP
@given(base=st.sampled_from(["version-1 fixture", "current"]), mutation=mutations())
def test_every_read_verb_on_mutated_stores_deeply(
    bases: dict[str, tuple[Path, str]], base: str, mutation: tuple[str, Callable[[Path], None]]
) -> None:
    _check_verbs(bases[base], mutation, (*LIGHT_VERBS, *REPORT))
