"""Target kinds and specs: built-in targets, [targets.NAME] tables, and the errors for bad ones."""

from __future__ import annotations

import pytest

from targets import (
    BUILTIN_TARGETS,
    KINDS,
    CpuTarget,
    SettingsError,
    SshTarget,
    Target,
    TargetSpec,
    create,
    spec_from_table,
)
from targets.cpu import LocalSettings


def test_builtins_are_cpu_and_cuda() -> None:
    assert set(BUILTIN_TARGETS) == {"cpu", "cuda"}
    assert set(KINDS) == {"cpu", "cuda", "ssh"}


@pytest.mark.parametrize("name", sorted(BUILTIN_TARGETS))
def test_create_builds_the_named_builtin(name: str) -> None:
    target = create(BUILTIN_TARGETS[name])
    assert isinstance(target, Target)
    assert target.name == name


def test_cpu_is_available_here() -> None:
    assert CpuTarget().available() == (True, "")


def test_missing_interpreter_is_unavailable_with_reason() -> None:
    ok, reason = CpuTarget(settings=LocalSettings(python="/nonexistent/python")).available()
    assert not ok
    assert "/nonexistent/python" in reason


def test_table_of_a_builtin_name_keeps_its_kind_and_takes_settings() -> None:
    spec = spec_from_table("cpu", {"cooldown_s": 2})
    assert spec == TargetSpec("cpu", "cpu", {"cooldown_s": 2})
    target = create(spec)
    assert isinstance(target, CpuTarget)
    assert target.thermal.cooldown_s == 2


def test_ssh_table_builds_an_ssh_target() -> None:
    spec = spec_from_table(
        "pi4", {"kind": "ssh", "host": "pi4.local", "user": "pi", "python": "/home/pi/venv/bin/python"}
    )
    target = create(spec)
    assert isinstance(target, SshTarget)
    assert target.settings.host == "pi4.local"
    assert spec.to_json() == {"kind": "ssh", "host": "pi4.local", "user": "pi", "python": "/home/pi/venv/bin/python"}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({}, r"^\[targets.pi4\]: 'kind' is required \(valid: cpu, cuda, ssh\)$"),
        ({"kind": "tpu"}, r"^\[targets.pi4\]: unknown kind 'tpu' \(valid: cpu, cuda, ssh\)$"),
        ({"kind": 3}, r"'kind' must be a string"),
        ({"kind": "ssh"}, r"^\[targets.pi4\]: 'host' is required$"),
        ({"kind": "ssh", "host": "pi", "hots": 1}, r"unknown key 'hots' \(accepted: .*host.*\)"),
        ({"kind": "ssh", "host": "pi", "port": "22"}, r"'port' must be an integer, got '22'"),
        ({"kind": "ssh", "host": "pi", "port": 70000}, r"port must be in 1\.\.65535"),
        ({"kind": "ssh", "host": "pi", "ssh_options": ["-oProxyCommand=x"]}, r"ssh_options entries are Key=Value"),
        ({"kind": "cpu", "cooldown_s": True}, r"'cooldown_s' must be a finite number, got True"),
        ({"kind": "cpu", "cooldown_below_c": "cool"}, r"'cooldown_below_c' must be a finite number, got 'cool'"),
        ({"kind": "cpu", "cooldown_s": float("nan")}, r"'cooldown_s' must be a finite number, got nan"),
        (
            {"kind": "ssh", "host": "pi", "connect_timeout_s": float("inf")},
            r"'connect_timeout_s' must be a finite number, got inf",
        ),
    ],
)
def test_bad_tables_are_one_line_errors(table: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=message) as info:
        spec_from_table("pi4", table)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("host", ["-oProxyCommand=touch /tmp/x", "pi; touch /tmp/x", "pi4 local", "$(reboot)", ""])
def test_host_names_that_could_be_options_or_shell_are_refused(host: str) -> None:
    with pytest.raises(SettingsError, match=r"\[targets.pi4\]: host .* is not a host name or address"):
        spec_from_table("pi4", {"kind": "ssh", "host": host})
