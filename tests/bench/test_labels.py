"""Short labels: one per variant, short enough for a table column and a tick label, the same in every view."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from bench.compare.sources import from_export
from bench.labels import FAMILIES, LABEL_WIDTH, family, short_executed, short_label, short_place, variant_key
from bench.records import ModelRecord
from compressors import registry
from tests.bench.record_factory import model_record

REFERENCE = Path(__file__).parents[2] / "results" / "reference" / "x86_64-amd-epyc-2cpu-t1"
RECORDS = sorted(REFERENCE.glob("**/records.json"))


def _defaults(name: str) -> dict[str, object]:
    fields = dataclasses.fields(registry.get(name))  # type: ignore[arg-type]
    return {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}


@pytest.mark.parametrize("name", registry.names())
def test_every_compressor_has_a_short_label_and_a_family(name: str) -> None:
    record = model_record(name, _defaults(name))
    label = short_label(record)
    assert 0 < len(label) <= LABEL_WIDTH
    assert family(record) in FAMILIES
    assert family(record) != "other", f"{name} has no family: its figures would share the 'other' colour"


def test_labels_of_every_reference_run_tell_its_variants_apart() -> None:
    assert RECORDS, "the reference runs are part of the repository"
    for path in RECORDS:
        seen: dict[str, str] = {}
        for record in from_export(path, "reference").records:
            if not isinstance(record, ModelRecord):
                continue
            identity = repr(variant_key(record))
            label = short_label(record)
            assert len(label) <= LABEL_WIDTH, label
            assert seen.setdefault(label, identity) == identity, f"{path}: '{label}' names two variants"


@pytest.mark.parametrize(
    ("compressor", "params", "recovery", "expected"),
    [
        ("prune.unstructured", {"sparsity": 0.9, "execution": "csr", "scope": "layer"}, {}, "unstr 90% csr layer"),
        ("prune.unstructured", {"sparsity": 0.9, "execution": "dense", "scope": "global"}, {}, "unstr 90%"),
        ("prune.channel", {"macs_removed": 0.7, "criterion": "l1"}, {"method": "relational", "seed": 2},
         "channel 70% +relational s2"),
        ("dynamic.early_exit", {"exits": "1+2", "rule": "entropy", "threshold": 0.1}, {}, "exit 1+2 ent 0.1"),
        ("chain", {"stages": "prune.unstructured(sparsity=0.9;scope=layer)+quant.cluster(bits=4)"}, {},
         "unstr 90%+cluster 4-bit"),
        ("quant.bits", {"bits": 2, "scheme": "affine"}, {}, "quant 2-bit"),
        ("prune.unknown_kind", {"alpha": 3}, {}, "prune.unknown_kind alpha=3"),
    ],
)  # fmt: skip
def test_label_shows_the_headline_parameter_and_what_differs_from_defaults(
    compressor: str, params: dict[str, object], recovery: dict[str, object], expected: str
) -> None:
    record = dataclasses.replace(model_record("none"), compressor=compressor, params=params, recovery=recovery)
    assert short_label(record) == expected


def test_a_long_label_is_cut_in_the_middle_and_keeps_its_training_suffix() -> None:
    params = {"stages": "+".join(["prune.unstructured(sparsity=0.5)"] * 4)}
    record = dataclasses.replace(model_record("none"), compressor="chain", params=params, recovery={"seed": 3})
    label = short_label(record)
    assert len(label) == LABEL_WIDTH and "…" in label and label.endswith(" s3") and label.startswith("unstr 50%")


def test_executed_as_and_place_are_short() -> None:
    record = model_record(
        "prune.unstructured", {"sparsity": 0.5}, executed_as="dense kernels (zeros stored), on ONNX Runtime",
        engine="onnxruntime", threads=4, batch=8,
    )  # fmt: skip
    assert short_executed(record) == "dense, zeros"
    assert short_place(record) == "cpu ort t4 b8"
    assert family(dataclasses.replace(record, params={"sparsity": 0.5, "execution": "csr"})) == "unstructured CSR"


def test_labels_import_no_torch() -> None:
    """compare and history only name cells: they must not pay seconds for torch to do it."""
    probe = (
        "import sys, bench.labels\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'torch_pruning', 'torchvision'}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
