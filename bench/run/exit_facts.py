"""What the host knows of a candidate whose work depends on its input (an early exit): where the test inputs
leave, what each exit costs, the expected MACs those make, and the stream of real inputs the worker times.

An input that leaves at exit i ran the stages up to it and every head on the way (the earlier ones were not sure),
so exit i's MACs are those of that path (`compressors._exits.exit_path`), counted like every model's. The expected
MACs of a rule are the sum over exits of the share of test inputs leaving there times that exit's MACs, and the
theoretical speedup is the baseline's MACs over them: `Macs.effective` holds the expected MACs, `Macs.dense` the
longest path's (every head and the whole backbone), so the report's theoretical speedup and efficiency read the
promise of the rule as they read any compressor's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.engines import EngineLimit, Exported
from bench.measure.accuracy import EvalSplit
from bench.measure.flops import macs_report
from bench.records import Macs
from compressors.early_exit import MultiExit, exit_path

__all__ = ["STREAM_INPUTS", "STREAM_SEED", "ExitFacts", "check_branches", "exit_facts", "stream_file", "stream_inputs"]

STREAM_INPUTS = 300
"""Real test inputs the worker times each candidate on: enough that the 99th percentile is not the single
slowest input (it interpolates between the 3rd and 4th slowest), few enough that a round over the stream of a
MNIST-sized model takes a fraction of a second."""
STREAM_SEED = 0
_BATCH = 500


def stream_inputs(test: EvalSplit, count: int = STREAM_INPUTS, seed: int = STREAM_SEED) -> torch.Tensor:
    """`count` test inputs drawn without replacement (seeded), in the drawn order: the stream a candidate and its
    baseline are timed on, and on which the host reports where they leave."""
    chosen = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))[:count]
    position = {int(index): rank for rank, index in enumerate(chosen)}
    picked: list[torch.Tensor | None] = [None] * len(chosen)
    start = 0
    for images, _labels in test.batches(_BATCH):
        for offset in range(len(images)):
            rank = position.get(start + offset)
            if rank is not None:
                picked[rank] = images[offset]
        start += len(images)
    return torch.stack([image for image in picked if image is not None])


def stream_file(model: str, test: EvalSplit, directory: Path) -> Path:
    """The stream of `model`'s test inputs saved as one float tensor for the worker (`torch.save`, read back with
    `weights_only`), written once per run beside the baselines' artifacts."""
    path = directory / f"{model}-stream-{STREAM_INPUTS}-seed{STREAM_SEED}.pt"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        torch.save(stream_inputs(test).contiguous(), partial)
        partial.replace(path)
    return path


@dataclass(frozen=True)
class ExitFacts:
    """Where inputs leave under one rule, and what that costs.

    Attributes:
        exit_macs: MACs of an input leaving at each exit (the heads' in order, the final one last), batch 1.
        shares: Share of the test split leaving at each exit; they sum to 1.
        stream_exits: The exit each input of the timed stream leaves at, in the stream's order.
        baseline_macs: The uncompressed model's MACs at batch 1.
    """

    exit_macs: tuple[int, ...]
    shares: tuple[float, ...]
    stream_exits: tuple[int, ...]
    baseline_macs: int

    @property
    def expected_macs(self) -> float:
        """Sum over exits of the share leaving there times that exit's MACs."""
        return expected_macs(self.shares, self.exit_macs)

    @property
    def stream_shares(self) -> tuple[float, ...]:
        return _shares(list(self.stream_exits), len(self.exit_macs))

    def macs(self, batch: int) -> Macs:
        """The record's MACs at `batch`: the longest path as dense, the expected MACs as effective."""
        return Macs(
            dense=batch * max(self.exit_macs),
            effective=round(batch * self.expected_macs),
            baseline=batch * self.baseline_macs,
        )

    def info(self) -> dict[str, Any]:
        """The facts as the record's `compressor_info` keeps them (JSON-native)."""
        return {
            "exit_macs": list(self.exit_macs),
            "exit_shares": list(self.shares),
            "expected_macs": self.expected_macs,
            "stream": {
                "inputs": len(self.stream_exits),
                "seed": STREAM_SEED,
                "exit_shares": list(self.stream_shares),
                "expected_macs": expected_macs(self.stream_shares, self.exit_macs),
                "exits": list(self.stream_exits),
            },
        }


def expected_macs(shares: tuple[float, ...], exit_macs: tuple[int, ...]) -> float:
    """Sum over exits of share times MACs."""
    return sum(share * macs for share, macs in zip(shares, exit_macs, strict=True))


def _shares(exits: list[int], count: int) -> tuple[float, ...]:
    return tuple(exits.count(index) / len(exits) for index in range(count))


@torch.inference_mode()
def _exits_of(executable: torch.jit.ScriptModule, images: torch.Tensor) -> list[int]:
    """The exit each image leaves at, as the executable decides it (its batched `decide`)."""
    _logits, index = executable.decide(images)
    return [int(i) for i in index]


def exit_facts(
    net: nn.Module, executable: nn.Module, test: EvalSplit, example: torch.Tensor, baseline_macs: int
) -> ExitFacts:
    """Exit MACs of `net` and where `executable` (its scripted early-exit form) sends the test split and the stream.

    Args:
        net: The trained multi-exit network (`Compressed.model`), whose exit paths are counted.
        executable: `finalize`'s module, with its rule.
        test: The held-out split.
        example: One input (batch 1) of the model's shape.
        baseline_macs: The uncompressed model's MACs at batch 1.
    """
    assert isinstance(net, MultiExit), "an input-dependent candidate is an early-exit network"
    assert isinstance(executable, torch.jit.ScriptModule), "finalize scripts it, so its decision stays a branch"
    exit_macs = tuple(macs_report(exit_path(net, i), example)["macs_dense"] for i in range(len(net.heads) + 1))
    exits: list[int] = []
    for images, _labels in test.batches(_BATCH):
        exits.extend(_exits_of(executable, images))
    return ExitFacts(
        exit_macs=exit_macs,
        shares=_shares(exits, len(exit_macs)),
        stream_exits=tuple(_exits_of(executable, stream_inputs(test))),
        baseline_macs=baseline_macs,
    )


def check_branches(exported: Exported, engine: str) -> None:
    """Raise `EngineLimit` unless the artifact still holds the decision as a branch: a graph that lost it (traced,
    or exported as one path) would time every input on the same path, which is no early exit."""
    if engine == "torchscript":
        graph = str(torch.jit.load(str(exported.path)).inlined_graph)
        found = "prim::If" in graph
    elif engine == "onnxruntime":
        import onnx  # noqa: PLC0415 - optional: only runs that ask for the engine have it

        found = any(node.op_type == "If" for node in onnx.load(str(exported.path)).graph.node)
    else:
        found = False
    if not found:
        raise EngineLimit(engine, "the exported graph has no branch: the exit decision would not run on the device")
