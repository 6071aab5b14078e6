"""Public names of a family module that live in its torch-using private module, imported on first use.

A family module holds only its torch-free config classes, so `import compressors` (and every read of a config's
name, parameters or presentation) never pays for torch; `from compressors.unstructured import prunable_layers`
still works, importing `compressors._unstructured` (and torch) at that moment.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(module: str, source: str, names: Iterable[str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` for `module` that returns each of `names` from the module `source`.

    Any other name raises AttributeError as a plain module would, so a typo is an error, not None.
    """
    exported = frozenset(names)

    def __getattr__(name: str) -> Any:
        if name not in exported:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        return getattr(importlib.import_module(source), name)

    return __getattr__
