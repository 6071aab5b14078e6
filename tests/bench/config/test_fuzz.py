"""Fuzzed boundary: generated matrix files, compressor specs and flag values give a RunConfig or a BenchError.

Nothing else may escape `load_config` or the CLI's parse-and-override path, whatever the input's shape, type or
size. The fast suite runs a bounded number of examples; `-m slow` runs a deeper search. Each test prints how
many examples it ran and how they ended (run pytest with `-s` to see the counts).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import compressors
from bench.cli.main import build_parser
from bench.cli.run import config_overrides
from bench.config.checks import TOP_LEVEL_KEYS
from bench.config.run_config import RunConfig, load_config
from bench.errors import BenchError

FAST = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
DEEP = settings(max_examples=2000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# Small registry models (and names that are not models), so that a valid config builds in milliseconds.
MODEL_NAMES = ["digits_cnn", "mnist_cnn", "digits_cnn", "nope", "", "resnet1"]
TARGET_NAMES = ["cpu", "cuda", "pi", ""]
COMPRESSOR_NAMES = [*compressors.names(), "prune", "quant.bitz", ""]
PARAMETERS = sorted(
    {f.name for name in compressors.names() for f in dataclasses.fields(compressors.get(name))} | {"bogus"}
)
SECTION_KEYS = {
    "timing": ["warmup_s", "block_min_s", "budget_s", "min_rounds", "max_rounds", "ci_rel", "budget"],
    "layers": ["models", "sparsities", "budget_s"],
    "recovery": ["method", "temperature", "alpha"],
}
TOKENS = [
    "inf",
    "-inf",
    "nan",
    "0",
    "-1",
    "1",
    "2",
    "0.5",
    "0.99",
    "1e400",
    "4096",
    "4097",
    "86401",
    "",
    ",",
    "x",
    "true",
    "csr",
    "layer",
    "l1",
]

# ---- TOML values: every type TOML has, the special floats included --------------------------------------------


class _Date(str):
    """A TOML local date, written bare: tomllib reads it as a `datetime.date`, a type no key accepts."""


floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 0.5, 0.9, 1.0, 1.5, -0.1, 1e6])
)
scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1), st.integers(min_value=-3, max_value=20), floats,
    st.booleans(),
    st.text(max_size=8), st.sampled_from(MODEL_NAMES + TARGET_NAMES + ["dense", "csr", "layer", "finetune", "distill"]),
    st.just(_Date("1979-05-27")),
)  # fmt: skip


def values(depth: int = 2) -> st.SearchStrategy[Any]:
    """Any TOML value, nested up to `depth` levels of arrays and inline tables."""
    if depth == 0:
        return scalars
    inner = values(depth - 1)
    return st.one_of(
        scalars, st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(PARAMETERS + TOKENS), inner, max_size=3)
    )


def grid() -> st.SearchStrategy[dict[str, Any]]:
    """A compressor's parameters: mostly its real keys, with values of every shape."""
    value = st.one_of(scalars, st.lists(scalars, max_size=3), values(1))
    return st.dictionaries(st.sampled_from(PARAMETERS), value, max_size=3)


TOP_LEVEL: dict[str, st.SearchStrategy[Any]] = {
    "models": st.one_of(st.lists(st.sampled_from(MODEL_NAMES), min_size=1, max_size=2), values(1)),
    "targets": st.one_of(
        st.lists(st.sampled_from(TARGET_NAMES), max_size=2),
        st.dictionaries(
            st.sampled_from(TARGET_NAMES),
            st.dictionaries(
                st.sampled_from(["kind", "host", "port", "connect_timeout_s", "cooldown_s"]), values(1), max_size=3
            ),
            max_size=2,
        ),
        values(1),
    ),
    "threads": st.one_of(st.lists(st.integers(min_value=-1, max_value=4), max_size=3), values(1)),
    "batch": st.one_of(st.lists(st.integers(min_value=-1, max_value=5000), max_size=3), values(1)),
    "finetune_steps": st.one_of(st.integers(min_value=-1, max_value=200_000), values(1)),
    "compressors": st.one_of(
        st.dictionaries(
            st.sampled_from(COMPRESSOR_NAMES), st.one_of(grid(), st.lists(grid(), max_size=2)), min_size=1, max_size=3
        ),
        values(1),
    ),
    "weights": st.one_of(
        st.dictionaries(st.sampled_from(MODEL_NAMES), st.one_of(st.just("/nonexistent.pt"), values(0)), max_size=2),
        values(1),
    ),
    "data": st.one_of(
        st.dictionaries(st.sampled_from(MODEL_NAMES), st.one_of(st.just("/nonexistent"), values(0)), max_size=2),
        values(1),
    ),
    **{
        section: st.one_of(
            st.dictionaries(st.sampled_from(keys), st.one_of(scalars, st.lists(scalars, max_size=3)), max_size=3),
            values(1),
        )
        for section, keys in SECTION_KEYS.items()
    },
}


@st.composite
def matrix_trees(draw: st.DrawFn) -> dict[str, Any]:
    """A matrix table: real keys with values of the right and the wrong shapes, now and then an unknown key.

    `models` and `[layers] models` are nearly always set to small models, so a valid tree does not build resnet18.
    """
    keys = draw(st.sets(st.sampled_from(sorted(TOP_LEVEL_KEYS - {"models"}) + ["modles"]), max_size=5))
    tree = {"models": draw(TOP_LEVEL["models"]), "layers": {"models": []}}
    for key in sorted(keys):
        tree[key] = draw(TOP_LEVEL.get(key, values(1)))
    return tree


CHOICES = [
    "dense",
    "csr",
    "layer",
    "global",
    "l1",
    "fpgm",
    "bn_gamma",
    "apoz",
    "affine",
    "symmetric",
    "auto",
    "all",
    "x",
]


def _near(default: Any) -> st.SearchStrategy[Any]:
    """Values of a parameter's own type around its valid range, so many points are valid and some just not."""
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(min_value=-1, max_value=40)
    if isinstance(default, float):
        return st.floats(min_value=-0.5, max_value=1.5)
    if isinstance(default, str) and "(" in default:  # a chain's stages
        return st.sampled_from([default, "prune.unstructured(sparsity=0.5)+quant.cluster(bits=2)", "none", "a(b"])
    if isinstance(default, str):
        return st.sampled_from(CHOICES)
    return st.one_of(
        st.integers(min_value=0, max_value=8), st.floats(min_value=-0.5, max_value=1.5)
    )  # unset by default


@st.composite
def plausible_trees(draw: st.DrawFn) -> dict[str, Any]:
    """A matrix a user would write: right shapes and types, values near and across the edges of their ranges."""
    tree: dict[str, Any] = {
        "models": draw(st.lists(st.sampled_from(["digits_cnn", "mnist_cnn"]), min_size=1, max_size=2))
    }
    grids = {}
    for name in draw(st.sets(st.sampled_from(compressors.names()), min_size=1, max_size=2)):
        fields = {f.name: f.default for f in dataclasses.fields(compressors.get(name))}
        keys = draw(st.sets(st.sampled_from(sorted(fields)), max_size=2)) if fields else set()
        grids[name] = {key: draw(st.lists(_near(fields[key]), min_size=1, max_size=2)) for key in sorted(keys)}
    tree["compressors"] = grids
    # Mostly in range, sometimes on the wrong side of an edge: each key alone is rarely what makes a tree invalid.
    tree["threads"] = draw(st.lists(st.sampled_from([1, 1, 2, 0]), min_size=1, max_size=2))
    tree["batch"] = draw(st.lists(st.sampled_from([1, 8, 4096, 1, 4097]), min_size=1, max_size=2))
    tree["finetune_steps"] = draw(st.sampled_from([0, 5, 100_000, 5, 100_001, -1]))
    tree["timing"] = {
        "budget_s": draw(st.sampled_from([0.2, 86400.0, 0.2, 86400.5])),
        "min_rounds": draw(st.sampled_from([2, 6, 8, 1])),
    }
    tree["layers"] = {
        "models": draw(st.sampled_from([[], ["digits_cnn"]])),
        "sparsities": draw(st.lists(st.floats(-0.01, 0.999), min_size=1, max_size=2)),
    }
    tree["recovery"] = {
        "method": draw(st.sampled_from(["finetune", "distill", "finetune", "prune"])),
        "alpha": draw(st.floats(-0.01, 1.0)),
    }
    return tree


def toml_value(value: Any) -> str:
    """`value` as TOML text; JSON's string escapes are TOML's, and TOML spells the special floats inf and nan."""
    if isinstance(value, _Date):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return ("-inf" if value < 0 else "inf") if math.isinf(value) else "nan" if math.isnan(value) else repr(value)
    if isinstance(value, (int, str)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return "{" + ", ".join(f"{json.dumps(key)} = {toml_value(item)}" for key, item in value.items()) + "}"


def toml_text(tree: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(key)} = {toml_value(value)}\n" for key, value in tree.items())


matrix_files = st.one_of(
    matrix_trees().map(lambda tree: toml_text(tree).encode()),
    plausible_trees().map(lambda tree: toml_text(tree).encode()),
    st.binary(max_size=40),  # whatever a wrong file holds, UTF-8 or not
    st.text(alphabet='[]{}="., \n#abcdefmnorstu0123456789', max_size=60).map(str.encode),  # TOML-ish, mostly broken
)

# ---- flags --------------------------------------------------------------------------------------------------------


def _joined(items: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(items, min_size=1, max_size=3).map(",".join)


numbers = st.one_of(
    st.sampled_from(TOKENS), st.integers(min_value=-5, max_value=10**7).map(str), floats.map(repr), st.text(max_size=5)
)
specs = st.builds(
    lambda name, parts: name + "".join(f":{key}={value}" for key, value in parts),
    st.sampled_from(COMPRESSOR_NAMES),
    st.lists(st.tuples(st.sampled_from(PARAMETERS + [""]), _joined(numbers)), max_size=3),
) | st.text(alphabet="abcdeilnpqrstuz.:=,()+;0159", max_size=30)

FLAGS: dict[str, st.SearchStrategy[list[str]]] = {
    "--threads": _joined(numbers).map(lambda v: ["--threads", v]),
    "--batch": _joined(numbers).map(lambda v: ["--batch", v]),
    "--budget": numbers.map(lambda v: [f"--budget={v}"]),
    "--layer-sparsities": _joined(numbers).map(lambda v: ["--layer-sparsities", v]),
    "--finetune-steps": numbers.map(lambda v: [f"--finetune-steps={v}"]),
    "--targets": _joined(st.sampled_from(TARGET_NAMES)).map(lambda v: [f"--targets={v}"]),
    "--compressors": st.lists(specs, min_size=1, max_size=3).map(lambda v: ["--compressors", *v]),
    "--no-layers": st.just(["--no-layers"]),
}


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """`run` with fuzzed flags; --models always names small models (or junk), as a real command line might."""
    argv = ["run", f"--models={draw(_joined(st.sampled_from(MODEL_NAMES)))}"]
    for flag in sorted(draw(st.sets(st.sampled_from(sorted(FLAGS)), max_size=5))):
        argv += draw(FLAGS[flag])
    return argv


# ---- the property -------------------------------------------------------------------------------------------------


def _outcome(build: Callable[[], RunConfig]) -> str:
    """'valid' or 'BenchError'; any other exception fails the test, as it would escape the CLI as a traceback."""
    try:
        config = build()
    except BenchError as error:
        assert len(str(error).splitlines()) == 1, repr(str(error))
        return "BenchError"
    assert isinstance(config, RunConfig)
    return "valid"


def _fuzz_files(runs: settings, tmp_path: Path) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    path = tmp_path / "matrix.toml"

    @runs
    @given(matrix_files)
    def check(content: bytes) -> None:
        path.write_bytes(content)
        outcome = _outcome(lambda: load_config(path))
        event(outcome)
        outcomes[outcome] += 1

    check()
    return outcomes


def _fuzz_flags(runs: settings, tmp_path: Path) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    store = tmp_path / "results" / "bench.sqlite"

    def build(argv: list[str]) -> RunConfig:
        args = build_parser().parse_args([*argv, "--store", str(store)])
        return load_config(args.config, config_overrides(args))

    @runs
    @given(command_lines())
    def check(argv: list[str]) -> None:
        outcome = _outcome(lambda: build(argv))
        event(outcome)
        outcomes[outcome] += 1

    check()
    assert not store.parent.exists()  # checking a config never writes
    return outcomes


def _report(kind: str, outcomes: Counter[str]) -> None:
    print(
        f"\n{kind}: {sum(outcomes.values())} examples, {outcomes['valid']} valid, {outcomes['BenchError']} BenchError"
    )
    assert outcomes["valid"] > 0 and outcomes["BenchError"] > 0, outcomes  # both sides of the boundary were reached


def test_fuzzed_matrix_files_give_a_config_or_a_bench_error(tmp_path: Path) -> None:
    _report("matrix files", _fuzz_files(FAST, tmp_path))


def test_fuzzed_flags_give_a_config_or_a_bench_error(tmp_path: Path) -> None:
    _report("flags", _fuzz_flags(FAST, tmp_path))


@pytest.mark.slow
def test_deep_fuzz_of_matrix_files(tmp_path: Path) -> None:
    _report("matrix files (deep)", _fuzz_files(DEEP, tmp_path))


@pytest.mark.slow
def test_deep_fuzz_of_flags(tmp_path: Path) -> None:
    _report("flags (deep)", _fuzz_flags(DEEP, tmp_path))
