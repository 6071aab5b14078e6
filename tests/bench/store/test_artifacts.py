"""The artifact folder a run keeps beside its store: files named by their SHA-256, copied whole or not at all,
kept once however often they are kept, within a cap, merged by copying and pruned to what is still named."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bench.store.artifacts import ArtifactFolder, artifacts_beside, digest


def _file(directory: Path, name: str, data: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(data)
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entries(folder: Path) -> list[str]:
    """Every name in the folder, hidden ones (a `.partial-*` copy) included."""
    return sorted(entry.name for entry in folder.iterdir()) if folder.exists() else []


def test_digest_is_sha256_of_the_whole_file_also_past_one_read_chunk(tmp_path: Path) -> None:
    data = bytes(range(256)) * (5 * 4096 + 3)  # 5 MiB and change: several 1 MiB reads, the last one short
    path = _file(tmp_path, "big.bin", data)
    assert digest(path) == _sha(data)
    assert digest(_file(tmp_path, "empty.bin", b"")) == _sha(b"")


def test_the_folder_of_a_store_is_artifacts_beside_it(tmp_path: Path) -> None:
    assert artifacts_beside(tmp_path / "results" / "bench.sqlite") == tmp_path / "results" / "artifacts"


def test_keep_copies_a_file_under_its_digest_and_suffix(tmp_path: Path) -> None:
    data = b"torchscript archive bytes" * 100
    source = _file(tmp_path / "work", "candidate-3.pt", data)
    folder = ArtifactFolder(tmp_path / "artifacts")  # not there yet: the first keep makes it

    sha256 = folder.keep(source)

    assert sha256 == _sha(data) == digest(source)
    kept = tmp_path / "artifacts" / f"{sha256}.pt"
    assert kept.read_bytes() == data
    assert _entries(folder.path) == [kept.name]
    assert folder.find(sha256) == kept
    assert folder.size_bytes() == len(data)
    assert source.read_bytes() == data  # a copy: the run's own file is left as it was


def test_keep_uses_the_digest_it_is_given(tmp_path: Path) -> None:
    data = b"onnx bytes"
    source = _file(tmp_path / "work", "baseline.onnx", data)
    folder = ArtifactFolder(tmp_path / "artifacts")
    assert folder.keep(source, _sha(data)) == _sha(data)
    assert (folder.path / f"{_sha(data)}.onnx").read_bytes() == data


def test_keeping_the_same_bytes_again_copies_nothing(tmp_path: Path) -> None:
    data = b"the same model, exported twice" * 50
    first = _file(tmp_path / "run1", "baseline.pt", data)
    second = _file(tmp_path / "run2", "another-name.pt", data)
    folder = ArtifactFolder(tmp_path / "artifacts")
    sha256 = folder.keep(first)
    assert sha256 is not None
    kept = folder.path / f"{sha256}.pt"
    before = kept.stat()

    assert folder.keep(second) == sha256
    assert folder.keep(first, sha256) == sha256

    assert _entries(folder.path) == [kept.name]
    after = kept.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not replaced by a new copy
    assert folder.size_bytes() == len(data)


def test_the_cap_refuses_a_file_that_would_exceed_it_and_leaves_nothing_of_it(tmp_path: Path) -> None:
    folder = ArtifactFolder(tmp_path / "artifacts", cap_bytes=100)
    first = folder.keep(_file(tmp_path, "a.pt", b"a" * 60))
    assert first == _sha(b"a" * 60)

    too_big = _file(tmp_path, "b.pt", b"b" * 41)  # 60 + 41 > 100
    assert folder.keep(too_big) is None

    assert folder.find(_sha(b"b" * 41)) is None
    assert _entries(folder.path) == [f"{first}.pt"]  # no .partial-* copy either
    assert folder.size_bytes() == 60

    exact = _file(tmp_path, "c.pt", b"c" * 40)  # 60 + 40 = 100: exactly at the cap still fits
    assert folder.keep(exact) == _sha(b"c" * 40)
    assert folder.size_bytes() == 100
    assert folder.keep(_file(tmp_path, "d.pt", b"d")) is None  # full: not one more byte
    assert sorted(_entries(folder.path)) == sorted([f"{first}.pt", f"{_sha(b'c' * 40)}.pt"])


def test_a_file_larger_than_the_cap_is_never_copied_into_an_empty_folder(tmp_path: Path) -> None:
    folder = ArtifactFolder(tmp_path / "artifacts", cap_bytes=10)
    assert folder.keep(_file(tmp_path, "big.pt", b"x" * 11)) is None
    assert _entries(folder.path) == []
    assert folder.size_bytes() == 0


def test_a_copy_that_fails_midway_leaves_no_partial_file(tmp_path: Path) -> None:
    folder = ArtifactFolder(tmp_path / "artifacts")
    kept = folder.keep(_file(tmp_path, "ok.pt", b"fine"))
    not_a_file = tmp_path / "a-folder.pt"
    not_a_file.mkdir()

    with pytest.raises(OSError):
        folder.keep(not_a_file, "0" * 64)  # stat succeeds, the copy itself fails

    assert _entries(folder.path) == [f"{kept}.pt"]
    assert folder.find("0" * 64) is None


def test_prune_removes_only_the_digests_not_named_and_returns_the_bytes_freed(tmp_path: Path) -> None:
    folder = ArtifactFolder(tmp_path / "artifacts")
    blobs = {name: name.encode() * size for name, size in (("a", 10), ("b", 200), ("c", 3000))}
    shas = {name: folder.keep(_file(tmp_path, f"{name}.pt", data)) for name, data in blobs.items()}
    assert all(shas.values())

    freed = folder.prune({shas["a"], "f" * 64})  # a digest named but not kept is no error

    assert freed == len(blobs["b"]) + len(blobs["c"])
    assert folder.find(shas["a"]) is not None
    assert folder.find(shas["b"]) is None and folder.find(shas["c"]) is None
    assert _entries(folder.path) == [f"{shas['a']}.pt"]
    assert folder.size_bytes() == len(blobs["a"])

    assert folder.prune({shas["a"]}) == 0  # everything left is named: nothing freed
    assert folder.find(shas["a"]) is not None
    assert folder.prune(set()) == len(blobs["a"])
    assert _entries(folder.path) == []


def test_add_from_copies_only_the_files_the_folder_lacks(tmp_path: Path) -> None:
    source = ArtifactFolder(tmp_path / "shard1" / "artifacts")
    target = ArtifactFolder(tmp_path / "merged" / "artifacts")
    shared, only_there = b"shared bytes" * 20, b"only in shard1" * 30
    assert source.keep(_file(tmp_path, "s.pt", shared)) and source.keep(_file(tmp_path, "o.onnx", only_there))
    assert target.keep(_file(tmp_path, "s2.pt", shared)) == _sha(shared)
    already = (target.path / f"{_sha(shared)}.pt").stat()

    assert target.add_from(source) == 1

    assert sorted(_entries(target.path)) == sorted([f"{_sha(shared)}.pt", f"{_sha(only_there)}.onnx"])
    assert (target.path / f"{_sha(only_there)}.onnx").read_bytes() == only_there
    assert (target.path / f"{_sha(shared)}.pt").stat().st_ino == already.st_ino  # the file it had is not rewritten
    assert target.add_from(source) == 0  # nothing left to copy
    assert _entries(source.path) == sorted([f"{_sha(shared)}.pt", f"{_sha(only_there)}.onnx"])  # source untouched


def test_add_from_stays_within_the_cap(tmp_path: Path) -> None:
    source = ArtifactFolder(tmp_path / "a")
    small, large = b"s" * 10, b"L" * 1000
    assert source.keep(_file(tmp_path, "small.pt", small)) and source.keep(_file(tmp_path, "large.pt", large))
    target = ArtifactFolder(tmp_path / "b", cap_bytes=500)

    assert target.add_from(source) == 1

    assert _entries(target.path) == [f"{_sha(small)}.pt"]
    assert target.size_bytes() <= 500


def test_a_missing_folder_holds_nothing_and_is_not_created_by_reading_it(tmp_path: Path) -> None:
    folder = ArtifactFolder(tmp_path / "no-such-folder")
    assert folder.find(_sha(b"anything")) is None
    assert folder.size_bytes() == 0
    assert folder.prune(set()) == 0
    assert ArtifactFolder(tmp_path / "empty").add_from(folder) == 0
    assert not folder.path.exists()


def test_find_ignores_a_file_it_did_not_keep_whole(tmp_path: Path) -> None:
    folder = ArtifactFolder(tmp_path / "artifacts")
    sha256 = _sha(b"half-written")
    _file(folder.path, f".partial-{sha256}", b"half")  # hidden: what a killed copy would leave
    assert folder.find(sha256) is None
    assert folder.size_bytes() == 0


def test_find_matches_a_whole_digest_only_and_prune_clears_what_a_killed_copy_left(tmp_path: Path) -> None:
    source = tmp_path / "model.onnx"
    source.write_bytes(b"onnx bytes")
    folder = ArtifactFolder(tmp_path / "kept")
    sha = folder.keep(source)
    assert sha is not None and folder.find(sha) is not None
    assert folder.find(sha[:8]) is None and folder.find("0") is None
    left = folder.path / ".partial-abc"
    left.write_bytes(b"half a copy")
    assert folder.prune({sha}) == len(b"half a copy")
    assert not left.exists() and folder.find(sha) is not None
