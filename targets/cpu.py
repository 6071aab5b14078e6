"""The CPU of this machine, timed by the worker zipapp in a local subprocess."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from collections.abc import Mapping
from typing import Any, Self

from targets._worker_target import WorkerTarget
from targets._zipapp import worker_zipapp
from targets.settings import ThermalPolicy, parse_settings

__all__ = ["CpuTarget", "LocalSettings"]


@dataclasses.dataclass(frozen=True)
class LocalSettings(ThermalPolicy):
    """Settings of a target on this machine: the interpreter that runs the worker, and the thermal policy."""

    python: str = sys.executable
    timeout_margin_s: float = 120.0


class CpuTarget(WorkerTarget):
    """Times models on this machine's CPU in a persistent worker subprocess.

    Timing in a separate process keeps the host's own state (imported libraries, allocator, threads) out of
    the measurement, and is the same protocol a remote device speaks, so local and remote numbers come from
    the same code.
    """

    def __init__(self, name: str = "cpu", settings: LocalSettings | None = None) -> None:
        """Describe the target; the worker starts on the first request.

        Args:
            name: The target's name, recorded with each measurement.
            settings: Interpreter, timeout margin and thermal policy; the defaults when None.
        """
        settings = settings or LocalSettings()
        # The same zipapp other targets copy to their device, so a local and a remote worker run the same bytes.
        self._zipapp = worker_zipapp()
        super().__init__(
            name,
            [settings.python, str(self._zipapp)],
            thermal=settings,
            timeout_margin_s=settings.timeout_margin_s,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._python = settings.python

    @classmethod
    def from_table(cls, name: str, table: Mapping[str, Any]) -> Self:
        """The target ``[targets.NAME]`` describes; raises ``SettingsError`` for a bad key or value."""
        return cls(name, parse_settings(LocalSettings, table, f"[targets.{name}]"))

    def available(self) -> tuple[bool, str]:
        """Whether the worker's interpreter and zipapp exist (torch itself is checked by the first request)."""
        if shutil.which(self._python) is None:
            return False, f"python interpreter not found or not executable: {self._python}"
        if not self._zipapp.is_file():
            return False, f"worker zipapp missing: {self._zipapp}"
        return True, ""
