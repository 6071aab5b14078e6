"""The progress line's ETA: estimated per cell kind and model from the cells measured so far, so the slow
layer-level cells at the end of a run are counted at their own time (issue 21: the ETA missed 2 minutes of 3)."""

from __future__ import annotations

import dataclasses
import io

from bench.records import Record
from bench.run.matrix import LAYER_COMPRESSOR, Cell
from bench.run.progress import Eta, Progress
from tests.bench.record_factory import layers_record, model_record


def _model(model: str, batch: int) -> Cell:
    return Cell("model", model, "none", (), "cpu", 1, batch, 0)


def _layers(model: str, sparsity: float) -> Cell:
    return Cell("layers", model, LAYER_COMPRESSOR, (("sparsity", sparsity),), "cpu", 1, 1, 0)


def _took(cell: Cell, seconds: float) -> Record:
    """A record of `cell` measured in `seconds` (what the ETA reads)."""
    if cell.kind == "layers":
        record: Record = layers_record(cell.target, dict(cell.params), [1.0, 1.0])
    else:
        record = model_record(model=cell.model, batch=cell.batch)
    return dataclasses.replace(record, elapsed_s=seconds)


def _progress(cells: list[Cell]) -> tuple[Progress, io.StringIO]:
    stream = io.StringIO()
    return Progress(cells, stream, clock=lambda: 0.0), stream


def _last_line(stream: io.StringIO) -> str:
    return stream.getvalue().splitlines()[-1]


def test_layer_cells_are_counted_at_their_own_time_once_one_is_measured() -> None:
    models = [_model("mnist_cnn", batch) for batch in (1, 2, 4, 8)]
    layers = [_layers("mnist_cnn", sparsity) for sparsity in (0.5, 0.7, 0.9)]
    progress, _ = _progress(models + layers)
    for cell in models:
        progress.done(cell, _took(cell, 2.0))
    # No layer cell measured: the three are counted at the model cells' 2 s, and the ETA says it may be more.
    assert progress.eta() == Eta(6.0, lower_bound=True)
    progress.done(layers[0], _took(layers[0], 20.0))
    # Ten times slower: the two layer cells left are counted at 20 s each, and the ETA is no longer a bound.
    assert progress.eta() == Eta(40.0, lower_bound=False)
    progress.done(layers[1], _took(layers[1], 30.0))
    assert progress.eta() == Eta(25.0, lower_bound=False)  # the mean of 20 s and 30 s
    progress.done(layers[2], _took(layers[2], 25.0))
    assert progress.eta() == Eta(0.0, lower_bound=False)


def test_the_line_says_the_eta_is_a_lower_bound_while_a_kind_ahead_was_never_measured() -> None:
    model, layer = _model("mnist_cnn", 1), _layers("mnist_cnn", 0.5)
    progress, stream = _progress([model, layer])
    progress.start(model)
    assert _last_line(stream).endswith("0s elapsed, ETA ? | measuring " + model.label)
    progress.done(model, _took(model, 90.0))
    assert _last_line(stream).endswith(" | ETA >= 1m30s")
    progress.start(layer)
    assert _last_line(stream) == "[1/2] 0s elapsed, ETA >= 1m30s | measuring " + layer.label
    progress.done(layer, _took(layer, 240.0))
    assert _last_line(stream).endswith(" | ETA 0s")


def test_reused_cells_do_not_shrink_the_estimate() -> None:
    cells = [_model("mnist_cnn", batch) for batch in (1, 2, 4, 8, 16, 32)]
    progress, stream = _progress(cells)
    progress.done(cells[0], None)
    progress.done(cells[1], None)
    # Nothing measured yet: reused cells, answered in no time, say nothing of what a measured one costs.
    assert progress.eta() is None
    assert _last_line(stream).endswith(" | ETA ?")
    progress.done(cells[2], _took(cells[2], 4.0))
    progress.done(cells[3], None)
    # Two cells ahead at the one measured cell's 4 s: the three reused ones count neither as time nor as cells.
    assert progress.eta() == Eta(8.0, lower_bound=False)
    assert _last_line(stream).endswith(" | ETA 8s")


def test_cells_are_estimated_by_their_model_when_one_of_it_was_measured() -> None:
    mnist = [_model("mnist_cnn", batch) for batch in (1, 2, 4)]
    resnet = [_model("resnet18", batch) for batch in (1, 2, 4)]
    progress, _ = _progress(mnist + resnet)
    progress.done(mnist[0], _took(mnist[0], 1.0))
    # No resnet18 cell measured: its cells are counted at the mean of their kind (a model's, here mnist_cnn's).
    assert progress.eta() == Eta(5 * 1.0, lower_bound=False)
    progress.done(mnist[1], _took(mnist[1], 1.0))
    progress.done(resnet[0], _took(resnet[0], 30.0))
    # One of each measured: the mnist_cnn cell left at 1 s, the two resnet18 ones at 30 s, not at the kind's mean.
    assert progress.eta() == Eta(1.0 + 2 * 30.0, lower_bound=False)
    progress.done(mnist[2], _took(mnist[2], 1.0))
    progress.done(resnet[1], _took(resnet[1], 20.0))
    assert progress.eta() == Eta(25.0, lower_bound=False)


def test_the_first_cell_of_a_group_pays_its_preparation_and_the_mean_keeps_it() -> None:
    """The mean, not the median: a compressed model's first cell pays its preparation, which each group ahead
    pays again, so the median (the cheap cells') would underestimate the cells left."""
    cells = [_model("resnet18", batch) for batch in (1, 2, 4, 8)]
    progress, _ = _progress(cells)
    progress.done(cells[0], _took(cells[0], 10.0))
    progress.done(cells[1], _took(cells[1], 1.0))
    progress.done(cells[2], _took(cells[2], 1.0))
    assert progress.eta() == Eta(4.0, lower_bound=False)


def test_a_run_of_reused_cells_only_ends_with_nothing_left() -> None:
    cells = [_model("mnist_cnn", 1), _layers("mnist_cnn", 0.5)]
    progress, stream = _progress(cells)
    for cell in cells:
        progress.done(cell, None)
    assert progress.eta() == Eta(0.0, lower_bound=False)
    assert _last_line(stream) == f"[2/2] cached  {cells[1].label} | ETA 0s"
