"""What the report's Markdown is made of besides tables: figures with their captions, and the slugs that name files
and anchors.

A figure is drawn only when what it shows changed: `figure_markdown` keeps, beside the report, a digest of each
figure's drawing call (the function and every argument, records included) and of the code that draws it, and
leaves a figure whose digest matches alone; a figure another report beside this one (another run of the same
store) already drew from the same call is copied from there. A report written again from unchanged records (a
finished matrix run again, `report` of the same run) draws nothing, while a changed record, a new suite version
or a deleted PNG draws it anew.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

__all__ = ["FIGURE_DIGESTS", "figure_markdown", "slug"]

FIGURE_DIGESTS = ".figures.json"
"""The file, in a report's folder, that holds the digest of each figure drawn there."""

_DRAWING_CODE = ("bench", "compressors")
"""Packages whose source decides how a figure looks (the figures, labels, palette and the compressors'
presentation): a change to any of them draws every figure again."""


def slug(text: str) -> str:
    """`text` as a file name or HTML anchor: lowercase letters and digits joined by single hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def figure_markdown(
    directory: Path | None, name: str, alt: str, caption: str, draw: Callable[[Path], Path]
) -> list[str]:
    """Draw one figure into `directory` as `name` (unless it is there, drawn from the same call) and return its
    Markdown: the image, then its caption in italics (what is drawn and how it was measured; the HTML report makes
    it the figure's caption). Nothing when no report is written."""
    if directory is None:
        return []
    path = directory / name
    digest = _call_digest(draw)
    digests = _read_digests(directory)
    if digest is None or digests.get(name) != digest or not path.is_file():
        drawn = _drawn_beside(directory, digest)
        directory.mkdir(parents=True, exist_ok=True)
        path = shutil.copyfile(drawn, path) if drawn is not None else draw(path)
        if digest is not None:
            digests[name] = digest
            (directory / FIGURE_DIGESTS).write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    return [f"![{alt}]({path.name})", "", f"*{caption}*", ""]


def _read_digests(directory: Path) -> dict[str, str]:
    try:
        digests = json.loads((directory / FIGURE_DIGESTS).read_text())
    except (OSError, ValueError):
        return {}
    return digests if isinstance(digests, dict) else {}


def _drawn_beside(directory: Path, digest: str | None) -> Path | None:
    """A figure with `digest` in a report folder beside `directory` (the runs of one store share a parent)."""
    if digest is None or not directory.parent.is_dir():
        return None
    for other in sorted(directory.parent.glob(f"*/{FIGURE_DIGESTS}")):
        if other.parent == directory:
            continue
        for name, theirs in _read_digests(other.parent).items():
            if theirs == digest and (other.parent / name).is_file():
                return other.parent / name
    return None


def _call_digest(draw: Callable[[Path], Path]) -> str | None:
    """A digest of the drawing call and of the code behind it; None when the call cannot be named reliably (not a
    `functools.partial` of a module function, or an argument whose repr holds a memory address), so it is drawn."""
    if not isinstance(draw, functools.partial):
        return None
    call = repr((draw.func.__module__, draw.func.__qualname__, draw.args, sorted(draw.keywords.items())))
    if " at 0x" in call:
        return None
    return hashlib.sha256(f"{_code_digest()}\n{call}".encode()).hexdigest()


@functools.cache
def _code_digest() -> str:
    """A digest of the source of the packages that draw figures, read once per process (a few milliseconds)."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parents[2]
    for package in _DRAWING_CODE:
        for source in sorted((root / package).rglob("*.py")):
            digest.update(str(source.relative_to(root)).encode())
            digest.update(source.read_bytes())
    return digest.hexdigest()
