"""Target names: creation and the error for an unknown one."""

from __future__ import annotations

import pytest

from targets import CpuTarget, Target, UnknownTargetError, create, target_names


def test_names_include_cpu() -> None:
    assert "cpu" in target_names()


@pytest.mark.parametrize("name", target_names())
def test_create_builds_the_named_target(name: str) -> None:
    target = create(name)
    assert isinstance(target, Target)
    assert target.name == name


def test_cpu_is_available_here() -> None:
    assert CpuTarget().available() == (True, "")


def test_missing_interpreter_is_unavailable_with_reason() -> None:
    ok, reason = CpuTarget(python="/nonexistent/python").available()
    assert not ok
    assert "/nonexistent/python" in reason


def test_unknown_name_suggests_close_match() -> None:
    with pytest.raises(UnknownTargetError) as info:
        create("cpuu")
    assert str(info.value) == "unknown target 'cpuu'; did you mean 'cpu'? valid: cpu"
    assert isinstance(info.value, KeyError)


def test_unknown_name_without_close_match_lists_valid() -> None:
    with pytest.raises(UnknownTargetError, match=r"^unknown target 'zzz'; valid: cpu$"):
        create("zzz")
