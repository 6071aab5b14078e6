"""How sensitive the perf gate is on this machine: its false-alarm rate and the smallest slowdown it catches.

    python ci/gate_power.py [--tries 10] [--effects 0,3,5,10] [--budget 6]

Real timings of real work, through the suite's own worker, the default timing protocol and the gate's own judging
path (`bench.compare.compare_runs`, then `bench.compare.remeasure` for every doubtful cell):
- the workload is a chain of identical 64-wide Linear + ReLU layers (TorchScript; its weights fit in cache, so
  its timing is steady); a candidate with k% more layers does k% more real work. Its true effect is measured on
  its own, interleaved with the base model in one long worker session (the most precise ratio the suite
  measures), and printed beside the nominal one;
- each try times the base model in one worker session and every candidate in a session of its own, as two
  nightly runs would, builds their records as the runner does (with the digests of the files they timed, kept in
  one artifact folder), and asks the gate for its verdict, re-measuring the two runs' artifacts of a doubtful cell
  as the gate does. The 0% row compares the base model with a copy of it saved on its own (the same content in
  other bytes, as two builds of one commit): its detections are false alarms.

The sessions of one try run in a shuffled order, so a drift of the machine's speed during a try does not always
favour the same effect. Prints one row per effect: the true effect with its interval, and how often the gate
called the change (`regressed`), could not judge it (`inconclusive`), or missed it; and the gate's wall time.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tabulate import tabulate

import targets
from bench.compare import Rules, Side, compare_runs
from bench.compare.remeasure import Remeasure, remeasure
from bench.compare.render import markdown
from bench.config.run_config import load_config, load_target_specs
from bench.engines.artifacts import save_torchscript
from bench.records import SCHEMA_VERSION, ArtifactRefs, Macs, ModelRecord, Sizes, Timing, machine_id
from bench.store.artifacts import ArtifactFolder
from bench.store.database import Run

WIDTH = 64
# The metrics a slower chain moves; its bytes grow too, which the gate reports as a size change of its own.
TIMING = ("latency", "speedup")


def _timing_verdict(outcomes: set[str]) -> str:
    """What the gate said of the timing: caught if either metric regressed, else inconclusive, else missed."""
    for verdict in ("regressed", "inconclusive", "improved"):
        if verdict in outcomes:
            return verdict
    return "unchanged"


def _chain(layers: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(*(m for _ in range(layers) for m in (torch.nn.Linear(WIDTH, WIDTH), torch.nn.ReLU())))


def _record(
    result: dict[str, Any], machine: dict[str, Any], layers: int, effect: float, refs: ArtifactRefs
) -> ModelRecord:
    """The record of one session, as the runner builds it; its sizes and MACs are the chain's real ones.

    Each effect is a cell of its own (`extra_work=+k%`), so one try's sessions read as two runs of one matrix.
    """
    params = layers * (WIDTH * WIDTH + WIDTH)
    return ModelRecord(
        schema_version=SCHEMA_VERSION, cell_id=f"gate-power+{effect:g}", model="linear-chain", compressor="none",
        params={"extra_work": f"+{effect:g}%"},
        target="cpu", threads=1, batch=1, status="ok", machine_id=machine_id(machine), machine=machine,
        sizes=Sizes(params_total=params, params_nonzero=params, dense_bytes=4 * params, csr_bytes=12 * params,
                    gzip_bytes=4 * params),
        macs=Macs(dense=layers * WIDTH * WIDTH, effective=layers * WIDTH * WIDTH, baseline=layers * WIDTH * WIDTH),
        timing=Timing.from_worker(result), artifacts=refs,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=10)
    parser.add_argument("--effects", default="0,3,5,10", help="slowdowns to try, in percent")
    parser.add_argument("--layers", type=int, default=100, help="layers of the base chain (1%% = one layer at 100)")
    parser.add_argument("--budget", type=float, help="timing budget per session (default: the suite's)")
    parser.add_argument("--true-budget", type=float, default=30.0, help="budget of each true-effect session")
    parser.add_argument("--markdown", type=Path, help="write the last try as the gate's Markdown summary")
    args = parser.parse_args(argv)
    effects = [float(e) for e in args.effects.split(",")]
    timing = load_config(None, {}).timing
    settings = {**asdict(timing), "seed": 0} | ({"budget_s": args.budget} if args.budget else {})
    rules = Rules()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp, targets.create(load_target_specs(None)["cpu"]) as cpu:
        machine = cpu.machine_info()
        example = torch.randn(1, WIDTH)
        folder = ArtifactFolder(Path(tmp) / "artifacts")
        chains = {e: round(args.layers * (1 + e / 100)) for e in effects}

        def saved(layers: int, name: str) -> Path:
            return save_torchscript(_chain(layers).eval(), example, Path(tmp) / name)

        base_file = saved(args.layers, "base.pt")
        # The 0% candidate is the base chain saved again: the same content in other bytes, as two builds give.
        files = {e: saved(chains[e], f"chain-{e:g}.pt") for e in effects}
        digests = {path: folder.keep(path) for path in [base_file, *files.values()]}
        remeasure_how = Remeasure((folder,), (folder,), settings, {"cpu": load_target_specs(None)["cpu"]})

        def session(candidate: Path, budget: float | None = None) -> tuple[dict[str, Any], ArtifactRefs]:
            pair = {"id": candidate.stem, "baseline": str(base_file), "candidate": str(candidate),
                    "input_shape": [1, WIDTH], "quantized_engine": None, **settings}  # fmt: skip
            if budget is not None:
                pair["budget_s"] = budget
            (result,) = cpu.time_pairs([pair], 1)
            refs = ArtifactRefs(baseline=digests[base_file], candidate=digests[candidate], input_shape=(1, WIDTH))
            return result, refs

        true_effect = {}
        for effect in effects:
            timing_of = Timing.from_worker(session(files[effect], args.true_budget)[0])
            true_effect[effect] = (1 / timing_of.speedup_median, timing_of.speedup_ci_high, timing_of.speedup_ci_low)
            print(f"true effect of +{effect:g}%: {100 * (true_effect[effect][0] - 1):+.1f}%", file=sys.stderr)

        verdicts: dict[float, Counter[str]] = {e: Counter() for e in effects}
        rounds: list[int] = []
        gate_s: list[float] = []
        for attempt in range(args.tries):
            base_result = session(base_file)
            order = list(effects)
            rng.shuffle(order)
            last_try = []
            for effect in order:
                base = _record(base_result[0], machine, args.layers, effect, base_result[1])
                cand_result = session(files[effect])
                cand = _record(cand_result[0], machine, chains[effect], effect, cand_result[1])
                last_try.append((base, cand))
                rounds.append(cand.timing.rounds if cand.timing else 0)
                started = time.monotonic()
                judged = compare_runs(_side("base", [base]), _side("candidate", [cand]), rules)
                (cell,) = remeasure(judged, remeasure_how, io.StringIO()).cells
                gate_s.append(time.monotonic() - started)
                outcomes = {cell.metrics[m].outcome for m in TIMING}
                verdicts[effect].update(f"{m} {cell.metrics[m].outcome}" for m in TIMING)
                verdicts[effect][_timing_verdict(outcomes)] += 1
                verdicts[effect]["re-measured"] += "re-measured" in cell.why
            caught = ", ".join(f"+{e:g}%: {verdicts[e]['regressed']}" for e in effects)
            print(f"try {attempt + 1}/{args.tries}: caught so far {caught}", file=sys.stderr)

    rows = []
    for effect in effects:
        ratio, low, high = true_effect[effect]
        seen = verdicts[effect]
        rows.append([
            f"+{effect:g}%", f"{100 * (ratio - 1):+.1f}% [{_pct(low)}, {_pct(high)}]", args.tries, seen["re-measured"],
            seen["latency regressed"], seen["speedup regressed"], seen["inconclusive"],
            seen["unchanged"] + seen["improved"], f"{seen['regressed']}/{args.tries}",
        ])  # fmt: skip
    headers = ["nominal", "true effect [95% CI]", "tries", "re-measured", "by latency", "by speedup", "inconclusive",
               "missed", "caught"]  # fmt: skip
    print(tabulate(rows, headers))
    print(
        f"gate: threshold {rules.threshold:.0%}; rounds per session: median {statistics.median(rounds):g}; judging"
        f" (re-measure included) per cell: median {statistics.median(gate_s):.1f} s, max {max(gate_s):.1f} s"
    )
    if args.markdown is not None:
        sides = [_side(name, [pair[i] for pair in sorted(last_try, key=lambda p: p[0].cell_id)])
                 for i, name in enumerate(("base", "candidate"))]  # fmt: skip
        args.markdown.write_text(markdown(compare_runs(*sides, Rules(fail_on=TIMING))))
    return 0


def _side(name: str, records: list[ModelRecord]) -> Side:
    run = Run(f"gate-power-{name}", "", None, "finished", {}, {}, {"commit": None, "dirty": None})
    return Side(name, run, tuple(records))


def _pct(inverse_speedup_bound: float | None) -> str:
    return "?" if inverse_speedup_bound is None else f"{100 * (1 / inverse_speedup_bound - 1):+.1f}%"


if __name__ == "__main__":
    sys.exit(main())
