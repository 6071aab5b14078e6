"""What every target offers: the ``Target`` protocol and the error a target raises."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

__all__ = ["Target", "TargetError"]


class TargetError(Exception):
    """A target could not measure.

    ``str(error)`` is one user-readable line saying why; ``detail`` keeps the longer evidence (the device's
    traceback or the tail of its stderr) for a log, so the one-line message stays printable by the CLI.
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


@runtime_checkable
class Target(Protocol):
    """A place where models are timed: this machine's CPU, a GPU, a remote board.

    Targets hold a device-side worker process, so they are context managers: leaving the ``with`` block
    closes the worker. Classes that subclass ``Target`` explicitly inherit ``__enter__``/``__exit__``.
    """

    name: str
    device: str
    """Where the device runs models, as torch names it: ``"cpu"`` (this machine or a remote board) or ``"cuda"``."""

    def available(self) -> tuple[bool, str]:
        """Whether this target can run here.

        Returns:
            ``(True, "")``, or ``(False, reason)`` so a run can skip the target and say why.
        """
        ...

    def machine_info(self) -> dict[str, Any]:
        """The device's fingerprint (arch, CPU, torch version, ...), as the worker's ``info`` answer."""
        ...

    def time_pairs(self, pairs: list[dict[str, Any]], threads: int) -> list[dict[str, Any]]:
        """Time baseline/candidate artifact pairs on the device, interleaved, one result per pair.

        Args:
            pairs: PAIR objects of the worker protocol (see ``targets.worker``).
            threads: Intra-op threads for torch on the device.

        Returns:
            The worker's result objects, in the order of ``pairs``.

        Raises:
            TargetError: If the device could not measure.
        """
        ...

    def close(self) -> None:
        """Stop the device-side worker; the target restarts it on the next request."""
        ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
