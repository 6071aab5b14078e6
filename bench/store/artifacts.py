"""The timed artifacts a run keeps beside its store, by content, so a later comparison can time them again.

A run's latencies cannot be compared with another run's on a shared machine: its speed moves between the two by
more than a real regression. Two artifacts can be, when they are timed against each other in one worker session
(`bench.compare.remeasure`), as a cell times its candidate against its baseline. So a run asked to keep its
artifacts (`[artifacts] keep = true`, `--keep-artifacts`) copies every file it timed into `artifacts/` beside its
store, named by its SHA-256 (the record's `artifacts` holds the digests): the same bytes are kept once, a copy is
never changed, and a folder can be merged into another by copying. ONNX exports of one model are the same bytes in
every run; TorchScript archives are not (each carries a random serialization id and lists a module's constants in
Python's per-process set order), so each run keeps its own, and `prune` keeps the folder to the runs still named.

The folder is bounded: a file that would take it past its cap is not kept (the record still names it, and a
comparison says it is missing), and `prune` removes what the runs still kept no longer name.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Collection
from pathlib import Path

__all__ = ["ArtifactFolder", "digest", "artifacts_beside", "DEFAULT_CAP_BYTES"]

DEFAULT_CAP_BYTES = 4 * 1024**3
"""A folder's size limit unless the matrix sets `[artifacts] cap_mb`: a resnet18 matrix keeps about 0.5 GB per run."""

_CHUNK = 1 << 20


def digest(path: Path) -> str:
    """The SHA-256 hex digest of the file at `path`."""
    sha = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def artifacts_beside(store: Path) -> Path:
    """The artifact folder of the store file `store`: `artifacts/` in its folder."""
    return store.parent / "artifacts"


class ArtifactFolder:
    """Files named `<sha256><suffix>` in one folder, added whole or not at all, within `cap_bytes` in all."""

    def __init__(self, path: Path, cap_bytes: int = DEFAULT_CAP_BYTES) -> None:
        self.path = path
        self.cap_bytes = cap_bytes

    def find(self, sha256: str) -> Path | None:
        """The kept file with this digest, or None when the folder does not hold it."""
        if not self.path.is_dir():
            return None
        named = [self.path / sha256, *self.path.glob(f"{sha256}.*")]  # kept under the digest and its suffix
        return next((path for path in named if path.is_file()), None)

    def size_bytes(self) -> int:
        """The bytes the folder's files take."""
        return sum(entry.stat().st_size for entry in self._files())

    def keep(self, source: Path, sha256: str | None = None) -> str | None:
        """Copy `source` in under its digest; the digest, or None when the cap leaves no room for it.

        A file already kept is not copied again. The copy is written beside its final name and renamed, so a run
        killed mid-copy leaves no partial artifact under a digest.
        """
        sha256 = sha256 or digest(source)
        if self.find(sha256) is not None:
            return sha256
        if self.size_bytes() + source.stat().st_size > self.cap_bytes:
            return None
        self.path.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=self.path, prefix=".partial-")
        os.close(handle)
        try:
            shutil.copyfile(source, partial)
            os.chmod(partial, 0o644)
            os.replace(partial, self.path / f"{sha256}{source.suffix}")
        finally:
            Path(partial).unlink(missing_ok=True)
        return sha256

    def add_from(self, other: ArtifactFolder) -> int:
        """Copy in every file of `other` this folder lacks (within the cap); how many were copied."""
        copied = 0
        for entry in other._files():
            sha256 = entry.name.split(".", 1)[0]
            if self.find(sha256) is None and self.keep(entry, sha256) is not None:
                copied += 1
        return copied

    def prune(self, named: Collection[str]) -> int:
        """Remove every file whose digest is not in `named`, and what a killed copy left; the bytes freed."""
        freed = 0
        partial = list(self.path.glob(".partial-*")) if self.path.is_dir() else []
        for entry in [*self._files(), *partial]:
            if entry in partial or entry.name.split(".", 1)[0] not in named:
                freed += entry.stat().st_size
                entry.unlink()
        return freed

    def _files(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        return [entry for entry in self.path.iterdir() if entry.is_file() and not entry.name.startswith(".")]
