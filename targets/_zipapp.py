"""The worker package as one zipapp: the single file every target runs and a remote device receives.

The archive is built from the package's sources, deterministically (sorted entries, a fixed timestamp and mode,
no compression), so its bytes and digest depend on the sources alone: the SSH target names the copy on a device by
that digest, and two builds of the same sources are the same file. Inside, the package is ``ARCHIVE_PACKAGE``, a
name nothing on a device's path shadows, and the archive's ``__main__.py`` runs its serve loop.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path

__all__ = ["ARCHIVE_PACKAGE", "PACKAGE_DIR", "build_zipapp", "worker_zipapp", "zipapp_bytes"]

PACKAGE_DIR = Path(__file__).with_name("worker")
"""The sources of the worker package, as the host imports them (``targets.worker``)."""

ARCHIVE_PACKAGE = "compression_bench_worker"

_MAIN = f"import sys\n\nfrom {ARCHIVE_PACKAGE}.serve import main\n\nsys.exit(main())\n"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_MODE = 0o644 << 16
_UNIX = 3


def _sources() -> list[tuple[str, bytes]]:
    """(name in the archive, content) of every module of the package, sorted by name."""
    files = sorted(p for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts)
    entries = [(f"{ARCHIVE_PACKAGE}/{p.relative_to(PACKAGE_DIR).as_posix()}", p.read_bytes()) for p in files]
    return sorted([*entries, ("__main__.py", _MAIN.encode())])


def zipapp_bytes() -> bytes:
    """The zipapp's content: the same bytes for the same sources, on any host."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, content in _sources():
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = _MODE
            info.create_system = _UNIX
            archive.writestr(info, content)
    return buffer.getvalue()


def build_zipapp(folder: Path) -> Path:
    """Write the zipapp into ``folder`` as ``worker-<digest>.pyz``, unless that file is already there and intact.

    The write goes to a temporary file renamed into place, so a worker never starts from half an archive, and
    hosts building at once agree on the result.
    """
    content = zipapp_bytes()
    path = folder / f"worker-{hashlib.sha256(content).hexdigest()[:16]}.pyz"
    if path.is_file() and path.read_bytes() == content:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=folder, prefix=".worker-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    except BaseException:
        os.unlink(partial)
        raise
    return path


def _cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "compression-bench"


def worker_zipapp() -> Path:
    """The zipapp of this host's worker sources in the user's cache folder, built there unless it already is (ms)."""
    return build_zipapp(_cache_folder())
