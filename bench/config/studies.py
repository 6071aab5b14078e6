"""Studies: matrix files under `studies/` that answer one question each (is the ticket better than a random
reinitialization? does feature distillation beat logits?), with the seeds their error bars need."""

from __future__ import annotations

from pathlib import Path

from bench.errors import BenchError, unknown_name

__all__ = ["STUDIES_DIR", "study_file", "study_names"]

STUDIES_DIR = Path(__file__).resolve().parents[2] / "studies"
"""The checkout's `studies/` folder, beside the packages."""


def study_names() -> list[str]:
    """The studies found, by file name without `.toml`."""
    return sorted(path.stem for path in STUDIES_DIR.glob("*.toml"))


def study_file(name: str) -> Path:
    """The matrix file of study `name`.

    Raises:
        BenchError: No such study (the message lists the ones there are).
    """
    if not STUDIES_DIR.is_dir():
        raise BenchError(f"no studies folder at {STUDIES_DIR}: studies run from a checkout of the suite")
    found = {path.stem: path for path in STUDIES_DIR.glob("*.toml")}
    if name not in found:
        raise unknown_name("study", name, found)
    return found[name]
