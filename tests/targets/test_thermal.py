"""Edge realities: temperatures read from thermal zones, the throttling verdict, and the cool-down between cells."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from targets import CpuTarget
from targets._worker_target import throttle_reason
from targets.cpu import LocalSettings
from targets.worker.machine import temperatures_c

MakePair = Callable[..., dict[str, Any]]


def _zone(root: Path, index: int, kind: str, millidegrees: str) -> None:
    zone = root / f"thermal_zone{index}"
    zone.mkdir(parents=True)
    (zone / "type").write_text(kind + "\n")
    (zone / "temp").write_text(millidegrees + "\n")


def test_thermal_zones_are_read_in_degrees_by_type(tmp_path: Path) -> None:
    _zone(tmp_path, 0, "cpu-thermal", "61850")
    _zone(tmp_path, 1, "acpitz", "-1500")
    _zone(tmp_path, 2, "acpitz", "40000")
    _zone(tmp_path, 3, "broken", "N/A")
    assert temperatures_c(str(tmp_path)) == {"cpu-thermal": 61.85, "acpitz": -1.5, "acpitz#2": 40.0}
    assert temperatures_c(str(tmp_path / "absent")) == {}


def _snapshot(temperature: float | None = None, throttled: int | None = None) -> dict[str, Any]:
    return {"temperature_c": temperature, "throttled": throttled}


@pytest.mark.parametrize(
    ("before", "after", "reason"),
    [
        (_snapshot(), _snapshot(), None),  # no sensor, no firmware flags: nothing says throttled
        (_snapshot(60.0, 0x0), _snapshot(79.9, 0x0), None),
        (_snapshot(60.0), _snapshot(80.0), "80.0 C >= 80 C"),
        (_snapshot(85.5), _snapshot(70.0), "85.5 C >= 80 C"),
        (_snapshot(50.0, 0x0), _snapshot(50.0, 0x4), "firmware reports throttled=0x4"),
        (_snapshot(50.0, 0x50000), _snapshot(50.0, 0x50000), None),  # throttled once since boot, before this cell
        (_snapshot(50.0, 0x0), _snapshot(50.0, 0x40000), "firmware throttled during the cell (0x0 -> 0x40000)"),
        (_snapshot(82.0, 0x0), _snapshot(50.0, 0x8), "82.0 C >= 80 C; firmware reports throttled=0x8"),
    ],
)
def test_throttle_verdict(before: dict[str, Any], after: dict[str, Any], reason: str | None) -> None:
    assert throttle_reason(before, after, limit_c=80.0) == reason


def test_cool_down_waits_before_the_cell_and_is_recorded(make_pair: MakePair) -> None:
    # This machine may have no sensor: then the wait is the whole cooldown_s; with one, at most that.
    with CpuTarget(settings=LocalSettings(cooldown_s=0.3, cooldown_below_c=-273.0)) as target:
        (result,) = target.time_pairs([make_pair("fast", "slow")], threads=1)
    assert 0.3 <= result["cooldown_waited_s"] < 5.0
    assert result["throttled"] is (result["throttle_reason"] is not None)


def test_a_throttle_limit_below_the_device_temperature_flags_every_cell(make_pair: MakePair) -> None:
    with CpuTarget(settings=LocalSettings(throttle_temp_c=-273.0)) as target:
        (result,) = target.time_pairs([make_pair("fast", "slow")], threads=1)
    if result["thermal_before"]["temperature_c"] is None:
        assert result["throttled"] is False  # no sensor here: nothing can be claimed
    else:
        assert result["throttled"] is True and "C >= -273 C" in result["throttle_reason"]
