"""The perf workflow calls the suite's own verbs: every `python -m bench` line in it parses with today's CLI.

GitHub's schema (checked by `check-jsonschema` in CI) knows the YAML, not our flags; this catches a renamed flag
or verb before a nightly run does.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from bench.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "perf.yml"
_EXPRESSION = re.compile(r"\$\{\{[^}]*\}\}")
# The workflow's variables that hold a flag or nothing (`--keep` on main).
_OPTIONAL_FLAGS = ("$KEEP", "$REFRESH")


def _bench_commands() -> list[list[str]]:
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    commands = []
    for job in jobs.values():
        for step in job["steps"]:
            for line in str(step.get("run", "")).splitlines():
                # An expression or a variable stands for a value, except those that hold optional flags.
                words = shlex.split(_EXPRESSION.sub("1", line))
                words = [w for w in words if w not in _OPTIONAL_FLAGS]
                words = ["value" if w.startswith("$") else w for w in words]
                if "bench" in words and words[words.index("bench") - 1] == "-m":
                    commands.append(words[words.index("bench") + 1 :])
                elif "ci/gate.sh" in words:  # runs `python -m bench ci gate` with the same arguments
                    commands.append(["ci", "gate", *words[words.index("ci/gate.sh") + 1 :]])
    return commands


def test_the_workflow_runs_the_ci_steps_and_the_suite_benchmarks() -> None:
    commands = _bench_commands()
    steps = {tuple(c[:2]) for c in commands}
    assert {("ci", "shard"), ("ci", "suite"), ("ci", "gate")} <= steps


@pytest.mark.parametrize("argv", _bench_commands(), ids=lambda argv: " ".join(argv[:2]))
def test_every_bench_command_of_the_workflow_parses(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.verb == "ci" and callable(args.handler)


def test_the_ci_matrix_files_are_valid_matrices() -> None:
    from bench.config.run_config import load_config

    hosted = load_config(ROOT / "ci" / "perf.toml", {})
    assert hosted.threads == (1,) and hosted.targets == ("cpu",) and len(hosted.models) == 2
    pi = load_config(ROOT / "ci" / "perf-pi.toml", {})
    assert pi.targets == ("pi",) and pi.target_specs["pi"].kind == "ssh" and not pi.layers.models
