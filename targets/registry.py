"""Target kinds, the built-in targets, and how a ``[targets.NAME]`` table becomes a target."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from targets.base import Target
from targets.cpu import CpuTarget
from targets.cuda import CudaTarget
from targets.settings import SettingsError
from targets.ssh import SshTarget

__all__ = ["BUILTIN_TARGETS", "KINDS", "LOCAL_KINDS", "TargetSpec", "create", "spec_from_table"]


class _Kind(Protocol):
    def from_table(self, name: str, table: Mapping[str, Any]) -> Target: ...


KINDS: dict[str, _Kind] = {"cpu": CpuTarget, "cuda": CudaTarget, "ssh": SshTarget}
"""Target classes by the ``kind`` a ``[targets.NAME]`` table gives."""

LOCAL_KINDS: frozenset[str] = frozenset({"cpu", "cuda"})
"""Kinds whose worker runs on this machine, so its cores are known before anything starts."""


class TargetSpec:
    """A named target as the config describes it: its kind and its settings table, checked when made."""

    def __init__(self, name: str, kind: str, settings: Mapping[str, Any] | None = None) -> None:
        """Check the settings by building the target once (no process starts, nothing connects).

        Raises:
            SettingsError: An unknown kind, or a setting the kind does not accept.
        """
        if kind not in KINDS:
            raise SettingsError(f"[targets.{name}]: unknown kind {kind!r} (valid: {', '.join(KINDS)})")
        self.name = name
        self.kind = kind
        self.settings = dict(settings or {})
        KINDS[kind].from_table(name, self.settings)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.settings}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TargetSpec) and (self.name, self.to_json()) == (other.name, other.to_json())

    def __repr__(self) -> str:
        return f"TargetSpec({self.name!r}, {self.to_json()!r})"


BUILTIN_TARGETS: dict[str, TargetSpec] = {"cpu": TargetSpec("cpu", "cpu"), "cuda": TargetSpec("cuda", "cuda")}
"""Targets every run knows without a ``[targets.NAME]`` table: this machine's CPU and its first GPU."""


def spec_from_table(name: str, table: Mapping[str, Any]) -> TargetSpec:
    """The target a ``[targets.NAME]`` table describes; ``kind`` defaults to the built-in of that name.

    Raises:
        SettingsError: No kind for a non-built-in name, an unknown kind, or a bad setting.
    """
    settings = dict(table)
    kind = settings.pop("kind", BUILTIN_TARGETS[name].kind if name in BUILTIN_TARGETS else None)
    if kind is None:
        raise SettingsError(f"[targets.{name}]: 'kind' is required (valid: {', '.join(KINDS)})")
    if not isinstance(kind, str):
        raise SettingsError(f"[targets.{name}]: 'kind' must be a string (valid: {', '.join(KINDS)})")
    return TargetSpec(name, kind, settings)


def create(spec: TargetSpec) -> Target:
    """A new target for ``spec``; its worker starts on the first request."""
    return KINDS[spec.kind].from_table(spec.name, spec.settings)
