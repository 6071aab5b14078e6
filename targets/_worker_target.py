"""What the CPU, CUDA and SSH targets share: one worker process spoken to in the worker protocol.

A subclass says how to start the worker (its argv), and, for a remote device, how artifacts get there; the
protocol, the timeouts, the cool-down between cells and the throttling verdict are the same on every device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from targets import worker  # its names load on first use: the protocol's need torch, this module does not
from targets._process import WorkerProcess
from targets.base import Target, TargetError
from targets.settings import ThermalPolicy

__all__ = ["WorkerTarget", "throttle_reason"]

# vcgencmd's "has happened since boot" bits sit 16 above the "now" bits; one newly set during a cell means the
# device throttled at some moment of it, even if it had recovered by the end.
_SINCE_BOOT_SHIFT = 16


def throttle_reason(before: dict[str, Any], after: dict[str, Any], limit_c: float) -> str | None:
    """Why a cell's timings may come from a throttled device, or None when nothing says so.

    Args:
        before: The worker's thermal snapshot before the timing (``temperature_c``, ``throttled``).
        after: The snapshot after it.
        limit_c: Temperature from which a device counts as hot enough to throttle.
    """
    reasons = []
    hottest = max((t for t in (before.get("temperature_c"), after.get("temperature_c")) if t is not None), default=None)
    if hottest is not None and hottest >= limit_c:
        reasons.append(f"{hottest:.1f} C >= {limit_c:g} C")
    bits_before, bits_after = before.get("throttled"), after.get("throttled")
    now = [bits for bits in (bits_before, bits_after) if bits is not None and bits & worker.THROTTLE_BITS_NOW]
    if now:
        reasons.append(f"firmware reports throttled=0x{now[-1]:x}")
    elif bits_before is not None and bits_after is not None:
        new = (bits_after & ~bits_before) >> _SINCE_BOOT_SHIFT
        if new & worker.THROTTLE_BITS_NOW:
            reasons.append(f"firmware throttled during the cell (0x{bits_before:x} -> 0x{bits_after:x})")
    return "; ".join(reasons) or None


class WorkerTarget(Target):
    """A target whose measurements come from the worker (``targets.worker``) answering JSON lines over a pipe.

    Subclasses set ``device`` and pass the argv that starts the worker; remote ones override ``_prepare``
    (put the worker in place before it starts), ``_ship`` (artifacts to the device) and ``_forget``
    (drop what the device was thought to hold after the connection was lost).
    """

    device: str = "cpu"

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        thermal: ThermalPolicy,
        timeout_margin_s: float,
        env: dict[str, str] | None = None,
    ) -> None:
        """Describe the target; the worker starts on the first request.

        Args:
            name: The target's name, recorded with each measurement.
            argv: Command that runs the worker and speaks the protocol on its stdin/stdout.
            thermal: Cool-down and throttling settings.
            timeout_margin_s: Seconds allowed beyond a request's own time budget, for starting the worker
                (importing torch), loading artifacts and calibration; also the whole timeout of ``info``.
            env: Environment of the local process (the host's when None).
        """
        self.name = name
        self.thermal = thermal
        self._timeout_margin_s = timeout_margin_s
        self._worker = WorkerProcess(argv, label=f"{name} worker", env=env)
        self._machine_info: dict[str, Any] | None = None

    @property
    def pid(self) -> int | None:
        """Process id of the running worker (for SSH: of the local ssh client), None when none is running."""
        return self._worker.pid

    def machine_info(self) -> dict[str, Any]:
        """The worker's ``info`` answer, asked once and cached (the machine does not change under us)."""
        if self._machine_info is None:
            machine = self._request({"op": "info"}, self._timeout_margin_s)["machine"]
            self._check_machine(machine)
            self._machine_info = machine
        return self._machine_info

    def time_pairs(self, pairs: list[dict[str, Any]], threads: int) -> list[dict[str, Any]]:
        """Time artifact pairs in the worker; see ``Target.time_pairs``.

        Cools the device down first when the target asks for it, and adds to each result the wait
        (``cooldown_waited_s``) and the throttling verdict (``throttled``, ``throttle_reason``). The answer
        may take each pair's budget twice over (``min_rounds`` can outlast the budget, and warm-up and
        calibration come on top), so the timeout is that plus the margin.

        Raises:
            TargetError: the device has fewer logical cores than ``threads`` (oversubscribed threads would time
                contention, not the model), or it could not measure.
        """
        cores = self.machine_info().get("cpu_count")
        if isinstance(cores, int) and threads > cores:
            raise TargetError(
                f"{self.name}: {threads} threads asked for, but the device has {cores} logical cores"
                f" (accepted: 1..{cores})"
            )
        waited_s = self._cool_down()
        timeout_s = self._timeout_margin_s
        for pair in pairs:
            options = {**worker.PAIR_DEFAULTS, **pair}
            timeout_s += 2 * (options["budget_s"] + options["warmup_s"])
        shipped = self._ship(pairs)
        request = {"op": "time", "threads": threads, "device": self.device, "pairs": shipped}
        results = self._request(request, timeout_s)["results"]
        self._unship(shipped)
        for result in results:
            reason = throttle_reason(result["thermal_before"], result["thermal_after"], self.thermal.throttle_temp_c)
            result.update(cooldown_waited_s=waited_s, throttled=reason is not None, throttle_reason=reason)
        return results

    def close(self) -> None:
        """Stop the worker; a later request starts a new one."""
        self._worker.close()

    def _cool_down(self) -> float | None:
        if self.thermal.cooldown_s <= 0:
            return None
        request = {"op": "cooldown", "max_s": self.thermal.cooldown_s, "below_c": self.thermal.cooldown_below_c}
        response = self._request(request, self.thermal.cooldown_s + self._timeout_margin_s)
        return float(response["waited_s"])

    def _request(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        if self._worker.pid is None:
            self._prepare()
        try:
            return self._worker.request(request, timeout_s)
        except TargetError:
            if self._worker.pid is None:  # the worker or its connection is gone, not just one failed request
                self._forget()
            raise

    def _check_machine(self, machine: dict[str, Any]) -> None:
        """Raise ``TargetError`` if the device cannot run what the host ships; every local worker can."""

    def _prepare(self) -> None:
        """Put what the worker needs in place before it starts; nothing for a local worker."""

    def _ship(self, pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The pairs with artifact paths as the device sees them; the same paths for a local worker."""
        return pairs

    def _unship(self, shipped: list[dict[str, Any]]) -> None:
        """Remove artifacts the device no longer needs; nothing for a local worker."""

    def _forget(self) -> None:
        """Forget what the device holds, after the worker was lost; nothing for a local worker."""
