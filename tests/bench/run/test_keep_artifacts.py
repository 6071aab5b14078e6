"""A run names the two files each model cell timed by their SHA-256, and with `--keep-artifacts` (or `[artifacts]
keep = true`) copies them into `artifacts/` beside its store, within the matrix's cap.

Real runs of digits_cnn (baseline, no compression, 90% unstructured as CSR) on TorchScript: the first trains the
model once; the others reuse its cache of trained weights, so they take a few seconds each.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from bench.records import ModelRecord
from bench.store.database import read_store
from tests.bench.conftest import run_main, tiny_run_args, write_fast_toml

COMPRESSORS = ["none", "prune.unstructured:sparsity=0.9:execution=csr"]
MB = 2**20


@dataclass
class Run:
    directory: Path
    store: Path
    records: list[ModelRecord]

    @property
    def artifacts(self) -> Path:
        return self.directory / "artifacts"


def _run(directory: Path, *flags: str, toml: str = "", cache_from: Path | None = None) -> Run:
    directory.mkdir(parents=True, exist_ok=True)
    if cache_from is not None:  # the trained digits_cnn: no run after the first trains it again
        shutil.copytree(cache_from / "cache", directory / "cache")
    store = directory / "bench.sqlite"
    result = run_main(tiny_run_args(store, write_fast_toml(directory, toml), *flags, compressors=COMPRESSORS))
    assert result.code == 0, result.err
    with read_store(store) as opened:
        records = opened.records(opened.run().run_id)
    models = [record for record in records if isinstance(record, ModelRecord)]
    assert len(models) == len(records) and [r.status for r in models] == ["ok", "ok"], [r.error for r in records]
    return Run(directory, store, models)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _named(records: list[ModelRecord]) -> set[str]:
    digests: set[str] = set()
    for record in records:
        assert record.artifacts is not None
        digests |= {record.artifacts.baseline, record.artifacts.candidate}
    return digests


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory.mktemp("kept"), "--keep-artifacts")


def test_every_model_record_names_its_baseline_and_candidate_digests(kept: Run) -> None:
    for record in kept.records:
        assert record.artifacts is not None, record.compressor
        assert record.artifacts.input_shape == (record.batch, 1, 8, 8)  # batch, then digits_cnn's 1x8x8 image
        assert record.artifacts.baseline != record.artifacts.candidate
    baselines = {r.artifacts.baseline for r in kept.records if r.artifacts}
    assert len(baselines) == 1  # one baseline for both cells of the model, hashed and kept once
    assert len(_named(kept.records)) == 3


def test_kept_artifacts_are_the_named_files_and_hash_to_their_names(kept: Run) -> None:
    files = sorted(kept.artifacts.iterdir())
    assert {path.name.split(".", 1)[0] for path in files} == _named(kept.records)  # all kept, nothing else
    for path in files:
        assert path.suffix == ".pt"
        assert _sha256(path) == path.name.split(".", 1)[0]


def test_a_kept_artifact_is_the_model_that_was_timed(kept: Run) -> None:
    record = kept.records[0]
    assert record.artifacts is not None
    model = torch.jit.load(str(kept.artifacts / f"{record.artifacts.baseline}.pt"))
    with torch.no_grad():
        assert model(torch.zeros(record.artifacts.input_shape)).shape == (record.batch, 10)  # ten digits


def test_without_the_flag_records_name_digests_but_nothing_is_kept(kept: Run, tmp_path: Path) -> None:
    plain = _run(tmp_path / "plain", cache_from=kept.directory)
    assert len(_named(plain.records)) == 3
    assert not plain.artifacts.exists()
    assert not [path for path in tmp_path.rglob("*") if path.name == "artifacts"]


def test_the_cap_keeps_what_fits(kept: Run, tmp_path: Path) -> None:
    sizes = sorted(path.stat().st_size for path in kept.artifacts.iterdir())
    room = sizes[0] + 4096
    assert room < sizes[1], sizes  # room for the smallest artifact alone
    directory = tmp_path / "capped"
    # What an earlier run kept fills the folder to `room` below its 1 MB cap.
    earlier = b"\0" * (MB - room)
    (directory / "artifacts").mkdir(parents=True)
    (directory / "artifacts" / f"{hashlib.sha256(earlier).hexdigest()}.pt").write_bytes(earlier)

    capped = _run(directory, toml="\n[artifacts]\nkeep = true\ncap_mb = 1\n", cache_from=kept.directory)

    named = _named(capped.records)
    assert len(named) == 3  # the records name every file timed, kept or not
    new = [path for path in capped.artifacts.iterdir() if path.name.split(".", 1)[0] in named]
    assert len(new) == 1 and new[0].stat().st_size <= room  # the one that fit
    assert _sha256(new[0]) == new[0].name.split(".", 1)[0]
    baselines = {r.artifacts.baseline for r in capped.records if r.artifacts}
    assert not any(path.name.startswith(tuple(baselines)) for path in new)  # the larger baseline did not fit
    entries = sorted(path.name for path in capped.artifacts.iterdir())
    assert len(entries) == 2 and not any(name.startswith(".") for name in entries)  # no partial copies left
    assert sum(path.stat().st_size for path in capped.artifacts.iterdir()) <= MB
