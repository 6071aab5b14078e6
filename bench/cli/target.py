"""`python -m bench target check NAME`: can this target measure, and what is it? Answered in seconds.

It starts the target's worker (for SSH: connects, copies the worker, checks the device's torch), asks for the
machine's facts, then ships a tiny TorchScript model written here and times it there: the whole path a cell
takes, without a cell's cost.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tabulate import tabulate

import targets
from bench.cli.support import Parser, Verbs, host_torch
from bench.errors import unknown_name

__all__ = ["register", "check_target", "check_named_target"]

_PROBE_FEATURES = 16
# A few rounds of a tiny model: proves loading and running, not speed.
_PROBE_TIMING = {"warmup_s": 0.001, "block_min_s": 0.001, "budget_s": 0.05, "min_rounds": 2, "max_rounds": 4}


def register(verbs: Verbs) -> None:
    """Add the `target` verb (and its `check`) to the CLI's subparsers."""
    verbs.add_parser("target", help="inspect a target", arguments=_arguments)


def _arguments(target: Parser) -> None:
    target_verbs = target.add_subparsers(dest="target_verb", required=True, parser_class=Parser)
    check = target_verbs.add_parser("check", help="connect, describe the machine, run a tiny model there")
    check.add_argument("name", help="a built-in target (cpu, cuda) or one defined as [targets.NAME] in --config")
    check.add_argument("--config", type=Path, help="TOML file with [targets.NAME] tables")
    check.set_defaults(handler=lambda args: check_named_target(args.name, args.config))


def check_named_target(name: str, config: Path | None = None) -> int:
    """Check the target `name` (built in, or a `[targets.NAME]` table of `config`) and print its facts.

    Returns:
        0 when the target can measure, 1 when it cannot (why, one line on stderr).
    """
    from bench.config.run_config import load_target_specs

    host_torch()
    specs = load_target_specs(config)
    if name not in specs:
        raise unknown_name("target", name, specs, also="or one defined as [targets.NAME] in a --config file")
    rows, problem = check_target(specs[name])
    print(tabulate(rows, tablefmt="plain"))
    if problem is not None:
        print(f"cannot measure on {name}: {problem}", file=sys.stderr)
        return 1
    return 0


def _onnxruntime(machine: dict[str, Any]) -> str:
    version = machine.get("onnxruntime")
    if not version:
        return "not installed (pip install onnxruntime)"
    providers = ", ".join(machine.get("onnxruntime_providers") or []) or "none"
    return f"{version} (execution providers: {providers})"


def _facts(spec: targets.TargetSpec, machine: dict[str, Any]) -> list[tuple[str, Any]]:
    from compressors.quant_int8 import resolve_engine

    thermal = machine.get("thermal") or {}
    memory = machine.get("memory_bytes")
    cuda = machine.get("cuda") or {}
    try:
        engine = resolve_engine("auto", machine.get("arch"))
    except ValueError as error:
        engine = f"none ({error})"
    throttled = thermal.get("throttled")
    return [
        ("target", f"{spec.name} ({spec.kind}{', ' + spec.settings['host'] if 'host' in spec.settings else ''})"),
        ("hostname", machine.get("hostname")),
        ("arch", machine.get("arch")),
        ("CPU", machine.get("cpu_model")),
        ("cores", machine.get("cpu_count")),
        ("memory", f"{memory / 2**30:.1f} GiB" if memory else None),
        ("OS", machine.get("os")),
        ("python", machine.get("python")),
        ("torch", machine.get("torch")),
        ("onnxruntime", _onnxruntime(machine)),
        ("quantized engines", ", ".join(machine.get("quantized_engines") or [])),
        ("int8 cells pack for", engine),
        (
            "GPU",
            f"{cuda['name']} (compute {cuda['capability']}, CUDA {cuda['runtime']}, driver {cuda['driver'] or '?'})"
            if cuda
            else "none",
        ),
        ("governor", machine.get("governor") or "not readable"),
        ("CPU MHz", machine.get("cpu_freq_mhz") or "not readable"),
        (
            "temperature",
            f"{thermal['temperature_c']:.1f} C" if thermal.get("temperature_c") is not None else "not readable",
        ),
        ("throttled", f"0x{throttled:x}" if throttled is not None else "not readable (no vcgencmd)"),
    ]


def check_target(spec: targets.TargetSpec) -> tuple[list[tuple[str, Any]], str | None]:
    """Connect to the target, describe its machine and run a tiny model there.

    Returns:
        The facts as (name, value) rows, and None if the target can measure, or why it cannot (one line).
    """
    import torch  # the probe is a real TorchScript file, written here

    from bench.engines.artifacts import save_torchscript

    started = time.monotonic()
    rows: list[tuple[str, Any]] = [("target", f"{spec.name} ({spec.kind})")]
    # A check is a few seconds of a tiny model: the cool-down a matrix may want between cells does not apply.
    quick = targets.TargetSpec(spec.name, spec.kind, {**spec.settings, "cooldown_s": 0.0})
    with targets.create(quick) as target:
        available, reason = target.available()
        if not available:
            return rows, f"unavailable: {reason}"
        try:
            machine = target.machine_info()
            rows = _facts(spec, machine)
            rows.append(("worker started in", f"{time.monotonic() - started:.1f} s"))
            probe_started = time.monotonic()
            with tempfile.TemporaryDirectory(prefix="bench-check-") as folder:
                example = torch.zeros(1, _PROBE_FEATURES)
                path = save_torchscript(
                    torch.nn.Linear(_PROBE_FEATURES, _PROBE_FEATURES), example, Path(folder) / "probe.pt"
                )
                pair = {
                    "id": "probe",
                    "baseline": str(path),
                    "candidate": str(path),
                    "input_shape": [1, _PROBE_FEATURES],
                    **_PROBE_TIMING,
                }
                (result,) = target.time_pairs([pair], threads=1)
            rows.append((
                "model round trip",
                f"a TorchScript file written by torch {torch.__version__} here loaded and ran there"
                f" ({result['rounds']} rounds, {time.monotonic() - probe_started:.1f} s)",
            ))  # fmt: skip
        except targets.TargetError as error:
            return rows, str(error)
    rows.append(("can run the worker", f"yes (checked in {time.monotonic() - started:.1f} s)"))
    return rows, None
