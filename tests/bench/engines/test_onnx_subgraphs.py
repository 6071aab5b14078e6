"""ONNX branches hold the weights they read, so ONNX Runtime treats them as constants; the function is unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from bench.engines.onnx_export import INPUT, export_onnx
from bench.engines.onnx_subgraphs import localize_weights
from compressors.early_exit import EarlyExit

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _branches(graph) -> list:  # noqa: ANN001 - an onnx.GraphProto
    found = []
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                found += [attribute.g, *_branches(attribute.g)]
    return found


def _run(path: Path, x: torch.Tensor) -> torch.Tensor:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {INPUT: x.numpy()})[0])


def test_every_branch_holds_the_weights_its_nodes_read(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 3))
    config = EarlyExit(exits="1", threshold=0.5)
    executable = config.finalize(config.apply(model, torch.zeros(1, 1, 8, 8)).model).model
    plain = tmp_path / "plain.onnx"
    torch.onnx.export(executable, (torch.zeros(1, 1, 8, 8),), str(plain), dynamo=False, input_names=[INPUT],
                      output_names=["output"], dynamic_axes={INPUT: {0: "batch"}, "output": {0: "batch"}})  # fmt: skip
    local = export_onnx(executable, torch.zeros(1, 1, 8, 8), tmp_path / "local.onnx")
    graph = onnx.load(str(local)).graph
    top_reads = {name for node in graph.node for name in node.input}
    assert all(initializer.name in top_reads for initializer in graph.initializer)
    for branch in _branches(graph):
        held = {initializer.name for initializer in branch.initializer}
        produced = {name for node in branch.node for name in node.output}
        weights = {name for node in branch.node for name in node.input if "weight" in name or "bias" in name}
        assert weights <= held | produced, weights - held
    for batch in (1, 5):
        x = torch.randn(batch, 1, 8, 8)
        torch.testing.assert_close(_run(local, x), _run(plain, x))


def test_a_graph_without_branches_is_left_as_it_is(tmp_path: Path) -> None:
    path = export_onnx(nn.Linear(4, 2), torch.zeros(1, 4), tmp_path / "linear.onnx")
    before = path.read_bytes()
    assert localize_weights(path) == 0
    assert path.read_bytes() == before
