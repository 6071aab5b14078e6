"""The worker's JSON-lines protocol, spoken directly to ``python worker-<digest>.pyz``."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from targets._zipapp import worker_zipapp


def _converse(lines: list[str]) -> tuple[list[dict[str, Any]], int]:
    """Send ``lines`` then end of input; return the parsed responses and the exit status."""
    done = subprocess.run(
        [sys.executable, str(worker_zipapp())],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return [json.loads(line) for line in done.stdout.splitlines()], done.returncode


def test_errors_are_answered_and_serving_continues_until_eof() -> None:
    requests = [
        "not json",
        '["a list"]',
        '{"op": "fly"}',
        '{"op": "time", "threads": 1, "pairs": [{"id": "x", "baseline": "a", "candidate": "b", '
        '"input_shape": [1], "budget": 1}]}',
        "",
        '{"op": "info"}',
    ]
    responses, status = _converse(requests)
    assert status == 0
    assert len(responses) == 5
    *errors, info = responses
    assert [r["ok"] for r in errors] == [False] * 4
    assert errors[0]["error"].startswith("JSONDecodeError: ")
    assert "unknown op 'fly'" in errors[2]["error"]
    assert "unknown field(s) budget" in errors[3]["error"]
    assert all("\n" not in r["error"] and r["traceback"] for r in errors)
    assert info["ok"] is True
    assert info["machine"]["torch"]


def test_quit_exits_zero_and_ignores_the_rest() -> None:
    responses, status = _converse(['{"op": "quit"}', '{"op": "info"}'])
    assert status == 0
    assert responses == []
