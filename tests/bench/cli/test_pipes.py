"""Output piped into a reader that stops early (`| head -1`): the command ends quietly, the store untouched."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.bench.conftest import REPO, SUBPROCESS_ENV, TinyRun, bench_command, count_records

SIGPIPE_STATUS = 141

VERBS = {
    "list runs": ["list", "runs"],
    "list compressors": ["list", "compressors"],
    "export csv": ["export", "--format", "csv"],
}


@pytest.mark.parametrize("verb", VERBS.values(), ids=VERBS.keys())
def test_a_reader_gone_before_the_first_line_ends_the_command_quietly(tiny_run: TinyRun, verb: list[str]) -> None:
    # The reader is closed before the command writes: its first write meets a broken pipe, every time.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            bench_command(*verb, "--store", str(tiny_run.store)), cwd=REPO, env=SUBPROCESS_ENV, stdout=write_end,
            stderr=subprocess.PIPE, text=True, timeout=180,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (SIGPIPE_STATUS, "")
    assert count_records(tiny_run.store) == 4


def test_head_reads_the_first_line_and_nothing_is_printed_on_stderr(tiny_run: TinyRun) -> None:
    command = " ".join(bench_command("export", "--format", "json", "--store", str(tiny_run.store)))
    done = subprocess.run(
        ["sh", "-c", f"{command} | head -c 1"], cwd=REPO, env=SUBPROCESS_ENV,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, "{", "")
