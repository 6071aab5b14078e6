"""`ci/gate.sh`, the workflow's gate step: exit 3 (inconclusive) is retried once, then fails; nothing else is
retried. Run with a stand-in interpreter that answers a scripted exit code per call."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _gate(tmp_path: Path, codes: list[int]) -> tuple[int, int]:
    """Run ci/gate.sh with a PYTHON that exits with `codes` in turn; its exit code and how often it ran."""
    calls = tmp_path / "calls"
    fake = tmp_path / "python"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$*" >> {calls}\n'
        f"codes=({' '.join(map(str, codes))})\n"
        f"n=$(wc -l < {calls})\n"
        'exit "${codes[$((n - 1))]}"\n'
    )
    fake.chmod(0o755)
    done = subprocess.run(
        ["bash", str(ROOT / "ci" / "gate.sh"), "shards/a.sqlite", "--kind", "k"],
        env={**os.environ, "PYTHON": str(fake)}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    lines = calls.read_text().splitlines()
    assert all(line == "-m bench ci gate shards/a.sqlite --kind k" for line in lines)
    return done.returncode, len(lines)


@pytest.mark.parametrize(
    ("codes", "expected"),
    [([0], (0, 1)), ([1], (1, 1)), ([2], (2, 1)), ([3, 0], (0, 2)), ([3, 1], (1, 2)), ([3, 3], (1, 2))],
)
def test_inconclusive_is_retried_once_then_fails_and_nothing_else_is_retried(
    tmp_path: Path, codes: list[int], expected: tuple[int, int]
) -> None:
    assert _gate(tmp_path, codes) == expected
