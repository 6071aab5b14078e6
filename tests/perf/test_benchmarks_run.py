"""The hot-path benchmarks run as tests, once each, inside the slow tests CI runs: so they cannot rot unnoticed
between the nightly runs that time them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.conftest import SUBPROCESS_ENV

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_perf_benchmarks_pass_untimed() -> None:
    command = [sys.executable, "-m", "pytest", "-m", "perf", "tests/perf", "--benchmark-disable", "-q"]
    done = subprocess.run(
        [*command, "-p", "no:cacheprovider"], cwd=REPO, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "7 passed" in done.stdout, done.stdout[-4000:]
