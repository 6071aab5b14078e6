"""Python warnings raised by the host's work in a run (third-party libraries, mostly), told once a run each, as one line
in the suite's words, instead of the library's own text (often many lines) in the middle of the progress display.

The host process does each piece of host work inside `HostWarnings.watching` (`bench.run.host`): the group's
preparation, which builds the reference and compresses, recovers, exports and evaluates every candidate
(`bench.run.prepare`), and what it makes ready for each cell's timing. That is the one place warnings are caught. The
filters in force when it starts still decide which warnings count and what each does (an `ignore` of the suite's CLI or
of pytest, a user's `-W error`); only their own de-duplication ("default", "once", "module") gives way to the run's, by
category and first line of the message. The full text of each warning is kept in memory and sent to the run at the end
of each group, for the run's caller (`RunOutcome`).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bench.labels import SCREEN_WIDTH, cut

__all__ = ["HostWarnings", "warning_line"]

# Actions that show a warning once per place, module or text: the run de-duplicates the warnings it catches itself.
_DEDUPLICATING = ("default", "module", "once")

_Key = tuple[type[Warning], str]


@dataclass
class _Seen:
    """The first of a kind of warning caught, as Python would print it, what the host was doing, and how many times
    the kind came."""

    text: str
    filename: str
    doing: str
    times: int = 1


class HostWarnings:
    """The warnings of one run: each kind (category and first line of its message) told once through `say`, when
    the host work it first came in is done, and its full text kept for `texts`."""

    def __init__(self, say: Callable[[str], None]) -> None:
        """`say` shows one line to the user: the progress display's message channel."""
        self._say = say
        self._kinds: dict[_Key, _Seen] = {}

    @contextmanager
    def watching(self, doing: str) -> Iterator[None]:
        """Catch the warnings raised in the block, which does the host work `doing` names ("prune.channel on
        swin_t"), and tell the kinds this run has not told yet once the block is done (or has raised)."""
        caught: dict[_Key, _Seen] = {}

        def show(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: TextIO | None = None,
            line: str | None = None,
        ) -> None:
            key = (category, _first_line(message))
            if key in caught:
                caught[key].times += 1
            else:
                text = warnings.formatwarning(message, category, filename, lineno, line)
                caught[key] = _Seen(text, filename, doing)

        try:
            with warnings.catch_warnings():
                _count_every_warning()
                warnings.showwarning = show
                yield
        finally:
            self._tell(caught)

    def texts(self) -> list[str]:
        """The full text of each kind of warning the run caught, first come first, with what the host was doing
        when it first came and how many times it came in all."""
        return [
            f"{seen.doing}: {'once' if seen.times == 1 else f'{seen.times} times'}: {seen.text.rstrip()}"
            for seen in self._kinds.values()
        ]

    def _tell(self, caught: dict[_Key, _Seen]) -> None:
        for key, seen in caught.items():
            if key in self._kinds:
                self._kinds[key].times += seen.times
                continue
            self._kinds[key] = seen
            category, first = key
            self._say(warning_line(seen.doing, category, first, _library(seen.filename), seen.times - 1))


def warning_line(doing: str, category: type[Warning], first: str, library: str | None, more: int) -> str:
    """The one line that tells a kind of warning: what the host was doing, who warned, the first line of the
    message (cut to fit the screen, `SCREEN_WIDTH`), and how many more like it were not shown."""
    who = f"{library} warned ({category.__name__})" if library else category.__name__
    head = f"warning: {doing}: {who}: "
    tail = f" (once; {more} more like it)" if more else ""
    room = SCREEN_WIDTH - len(head) - len(tail)
    if len(first) > room:
        first = first[: max(room - 1, 0)] + "…"
    return cut(head + first + tail, SCREEN_WIDTH)


def _first_line(message: Warning | str) -> str:
    lines = str(message).strip().splitlines()
    return lines[0].strip() if lines else ""


def _count_every_warning() -> None:
    """Make the filters in force pass each warning they would show every time it is raised, and only those: the
    warnings they ignore stay ignored, those they turn into errors still raise. Called inside `catch_warnings`,
    which puts the filters back."""
    kept: list[tuple[Any, ...]] = list(warnings.filters)
    warnings.resetwarnings()
    for action, message, category, module, lineno in kept:
        warnings.filterwarnings(
            "always" if action in _DEDUPLICATING else action,
            getattr(message, "pattern", message) or "",
            category,
            getattr(module, "pattern", module) or "",
            lineno,
            append=True,
        )
    warnings.simplefilter("always", append=True)  # what no filter matches, Python shows once per place ("default")


@functools.cache
def _library(filename: str) -> str | None:
    """The distribution (or else the top-level module) whose file `filename` is, found from the import path: the
    library that warned, when it warned from its own code; None when the file is on no import path."""
    if filename.startswith("<"):
        return None  # frozen or generated code
    path = os.path.abspath(filename)
    roots = [os.path.abspath(entry or os.curdir) for entry in sys.path]
    inside = [root for root in roots if path.startswith(root.rstrip(os.sep) + os.sep)]
    if not inside:
        return None
    relative = Path(os.path.relpath(path, max(inside, key=len)))
    top = relative.parts[0].removesuffix(".py")
    names = list(dict.fromkeys(_distributions().get(top, ())))
    return names[0] if len(names) == 1 else top


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())
