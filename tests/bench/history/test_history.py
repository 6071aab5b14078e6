"""`python -m bench history` on real stores: series across runs and commits, change points at the right commit,
reused records once, filters, the plot, and bad input refused in one line with nothing written."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from matplotlib.image import imread

from bench.history import METRICS, Filters, build_history, median_interval
from bench.records import Record, Sizes
from bench.store.database import open_store, read_store
from tests.bench.conftest import run_main, run_subprocess
from tests.bench.record_factory import layers_record, model_record, timing

RUNS = 8
STEP_RUN = 3  # the fourth run


def _commit(index: int) -> str:
    return hashlib.sha1(f"commit {index}".encode()).hexdigest()


def _run_id(index: int) -> str:
    return f"2026010{index // 10}-{index % 10:02d}0000-ab{index:02d}"


def _latency(median_s: float, **fields: object) -> dict[str, object]:
    """A candidate timing with nine samples 1% apart around `median_s` (so the median has an interval)."""
    samples = tuple(median_s * (1 + 0.01 * k) for k in range(-4, 5))
    return {"timing": timing(median_s=median_s, samples=samples, **fields)}


def _noisy(seed: int, step: float = 0.0, noise: float = 0.02, runs: int = 40) -> list[float]:
    rng = random.Random(seed)
    return [1e-3 * (1 + (step if i >= STEP_RUN else 0)) * math.exp(rng.gauss(0, noise)) for i in range(runs)]


# A cell: how its record of run i is made; None reuses the cell's previous record.
CellMaker = Callable[[int], Record | None]


def _stepped(i: int) -> Record:
    return model_record("prune.channel", {"macs_removed": 0.5}, model="mnist_cnn", **_latency(_noisy(1, 0.15)[i]))


def _flat(i: int) -> Record:
    return model_record("none", model="mnist_cnn", **_latency(_noisy(2)[i], busy=i == 5))


def _other_model(i: int) -> Record:
    return model_record("none", model="resnet18", target="cuda", **_latency(_noisy(3)[i]))


def _measured_twice(i: int) -> Record | None:
    """Measured by the first and fifth runs only: every other run reuses the record before it."""
    return model_record("quant.int8", model="mnist_cnn", **_latency(1e-3 * (1 + i / 100))) if i in (0, 4) else None


CELLS: tuple[CellMaker, ...] = (_stepped, _flat, _other_model, _measured_twice)


def make_store(path: Path, cells: tuple[CellMaker, ...] = CELLS, runs: int = RUNS, dirty: int | None = None) -> Path:
    """A store of `runs` runs, one per commit, each answering every cell (measuring it or reusing a record)."""
    with open_store(path) as store:
        latest: dict[int, tuple[int, str]] = {}
        for i in range(runs):
            run_id = _run_id(i)
            commit = {"commit": _commit(i), "dirty": i == dirty}
            store.start_run(run_id, {"models": ["mnist_cnn"]}, [], {"hostname": "h"}, commit, None)
            for number, make in enumerate(cells):
                record = make(i)
                if record is not None:
                    latest[number] = store.add_record(run_id, record), record.cell_id
                else:
                    record_id, cell_id = latest[number]
                    store.reuse(run_id, cell_id, record_id)
            store.finish_run(run_id, "finished")
    return path


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return make_store(tmp_path / "results" / "bench.sqlite")


def _history(path: Path, metric: str = "latency", **filters: str):
    with read_store(path) as store:
        return build_history(store.runs(), store.measured(), METRICS[metric], Filters(**filters))


def _series(history, label_part: str):
    (found,) = [series for series in history.series if label_part in series.label]
    return found


def test_a_step_at_the_fourth_run_is_found_at_its_commit(store_path: Path) -> None:
    history = _history(store_path)
    stepped = _series(history, "channel 50%")
    (step,) = stepped.steps
    assert history.runs[stepped.points[step.index].run].commit == _commit(STEP_RUN)
    assert step.change == pytest.approx(0.15, abs=0.05)
    result = run_main(["history", "--store", str(store_path), "--output", str(store_path.parent / "h")])
    assert result.code == 0, result.err
    (line,) = [line for line in result.out.splitlines() if line.startswith("change at")]
    assert line.startswith(f"change at {_commit(STEP_RUN)[:7]} ({_run_id(STEP_RUN)}): latency +1")
    assert "mnist_cnn | channel 50% | cpu t=1 b=1" in line


def test_flat_noisy_series_have_no_change_point(store_path: Path) -> None:
    history = _history(store_path)
    assert _series(history, "mnist_cnn | none").steps == ()
    assert _series(history, "resnet18").steps == ()


def test_a_reused_record_is_one_point_at_the_run_that_measured_it(store_path: Path) -> None:
    series = _series(_history(store_path), "| int8 |")
    assert [point.run for point in series.points] == [0, 4]
    assert series.points[1].value == pytest.approx(1.04e-3)


def test_filters_choose_cells_by_model_compressor_and_target(store_path: Path) -> None:
    assert {s.model for s in _history(store_path, model="resnet18").series} == {"resnet18"}
    assert [s.label for s in _history(store_path, compressor="prune.*").series] == [
        "mnist_cnn | channel 50% | cpu t=1 b=1"
    ]
    assert [s.model for s in _history(store_path, target="cuda").series] == ["resnet18"]
    out = run_main(["history", "--store", str(store_path), "--model", "resnet18", "--output", str(store_path.parent)])
    assert "resnet18" in out.out and "mnist_cnn" not in out.out


def test_the_plot_is_a_real_png_beside_the_store_by_default(store_path: Path) -> None:
    result = run_main(["history", "--store", str(store_path), "--metric", "latency"])
    assert result.code == 0, result.err
    path = store_path.parent / "history" / "history-latency.png"
    assert result.out.strip().endswith(f"plot: {path}")
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 600
    assert path.stat().st_size > 20_000
    assert image[..., :3].std() > 0.05  # drawn on, not a blank canvas


def test_the_table_fits_120_columns_and_says_what_it_leaves_out(tmp_path: Path) -> None:
    def long_name(i: int) -> Record:
        params = {"sparsity": 0.95, "execution": "csr", "scope": "global"}
        return model_record("prune.unstructured", params, model="a_very_long_model_name", **_latency(1e-3))

    path = make_store(tmp_path / "bench.sqlite", cells=(long_name, _flat), runs=30, dirty=29)
    result = run_main(["history", "--store", str(path), "--output", str(tmp_path / "out")])
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert max(len(line) for line in lines) <= 120
    assert any(line.endswith("older runs not shown here (the plot has every run)") for line in lines)
    header = next(line for line in lines if line.lstrip().startswith("#"))
    assert header.rstrip().endswith(_commit(29)[:7] + "+")
    assert "!" in result.out  # the busy run's point is marked


def test_other_metrics_read_their_own_fields(tmp_path: Path) -> None:
    def accurate(i: int) -> Record:
        sizes = Sizes(params_total=10, params_nonzero=10, dense_bytes=4000, csr_bytes=8000, gzip_bytes=3600 - i)
        return model_record("none", model="mnist_cnn", top1=0.9 - (0.05 if i >= STEP_RUN else 0), sizes=sizes)

    def sweep(i: int) -> Record:
        return layers_record("cpu", {"sparsity": 0.9}, [1.0 + (0.5 if i >= STEP_RUN else 0.0)] * 2)

    path = make_store(tmp_path / "bench.sqlite", cells=(accurate, sweep), runs=6)
    top1 = _history(path, "top1")
    (series,) = top1.series  # the layer sweep has no top-1
    assert series.points[0].value == pytest.approx(90.0)
    assert series.points[0].low == pytest.approx(90.0 - 1.96 * 100 * (0.9 * 0.1 / 1000) ** 0.5, abs=1e-3)
    assert [step.index for step in series.steps] == [STEP_RUN]
    assert [s.points[-1].value for s in _history(path, "bytes").series] == [3595]
    speedups = _history(path, "speedup").series
    assert {s.label.split(" | ")[1] for s in speedups} == {"none", "layers unstr 90%"}
    (sweep_series,) = [s for s in speedups if "layers" in s.label]
    assert [step.index for step in sweep_series.steps] == [STEP_RUN]


def test_median_interval_from_order_statistics() -> None:
    assert median_interval([1.0, 2.0, 3.0, 4.0, 5.0]) is None
    assert median_interval([float(v) for v in range(6)]) == (0.0, 5.0)
    low, high = median_interval([float(v) for v in range(100)])
    assert (low, high) == (39.0, 60.0)


def test_a_single_run_shows_its_points_and_says_detection_needs_more(tmp_path: Path) -> None:
    path = make_store(tmp_path / "bench.sqlite", runs=1)
    result = run_main(["history", "--store", str(path), "--output", str(tmp_path / "out")])
    assert result.code == 0, result.err
    assert "the store has 1 run: change detection needs more runs" in result.out
    assert _commit(0)[:7] in result.out and (tmp_path / "out" / "history-latency.png").is_file()


def test_a_folder_that_cannot_hold_the_plot_still_prints_the_table(store_path: Path) -> None:
    (store_path.parent / "history").write_text("a file where the folder would go")
    result = run_main(["history", "--store", str(store_path)])
    assert result.code == 0
    assert "change at" in result.out
    assert "is not writable, so the plot is not written; give --output DIR" in result.err


BAD = {
    "missing store": (["--store", "{tmp}/none.sqlite"], "--store: no store at"),
    "no matching model": (["--model", "vgg16"], "no stored cell matches --model/--compressor/--target"),
    "unknown metric": (["--metric", "flops"], "invalid choice: 'flops'"),
    "output a file": (["--output", "{tmp}/results/bench.sqlite"], "--output: cannot write into"),
}


@pytest.mark.parametrize("extra, fragment", BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_line_and_writes_nothing(store_path: Path, extra: list[str], fragment: str) -> None:
    tmp = store_path.parent.parent
    before = sorted(p.relative_to(tmp) for p in tmp.rglob("*"))
    argv = ["history", "--store", str(store_path), *(arg.format(tmp=tmp) for arg in extra)]
    result = run_main(argv)
    assert result.code == 2 and result.out == ""
    assert result.err.count("\n") == 1 and result.err.startswith("error: ") and fragment in result.err
    assert sorted(p.relative_to(tmp) for p in tmp.rglob("*")) == before


def test_no_match_names_what_the_store_has(store_path: Path) -> None:
    result = run_main(["history", "--store", str(store_path), "--compressor", "quant.bits"])
    assert "models: mnist_cnn, resnet18; compressors: none, prune.channel, quant.int8; targets: cpu, cuda" in result.err


def test_the_ci_command_line_in_a_subprocess_with_more_cells_than_the_plot_draws(tmp_path: Path) -> None:
    def sparsity(level: float) -> CellMaker:
        def make(i: int) -> Record:
            params = {"sparsity": level, "execution": "csr"}
            return model_record(
                "prune.unstructured", params, model="mnist_cnn", **_latency(_noisy(int(level * 100))[i])
            )

        return make

    cells = (_stepped, *(sparsity(level / 100) for level in range(50, 100, 4)))
    path = make_store(tmp_path / "bench.sqlite", cells=cells)
    done = run_subprocess("history", "--store", str(path), "--metric", "latency", "--output", str(tmp_path / "ci"))
    assert done.returncode == 0, done.stderr
    assert f"change at {_commit(STEP_RUN)[:7]}" in done.stdout
    assert imread(tmp_path / "ci" / "history-latency.png").shape[1] > 600


def test_a_sharded_matrix_is_one_run_at_its_merged_run(tmp_path: Path) -> None:
    """Two shard runs and the merged run that links their records: one column, every cell's point in it."""
    path = tmp_path / "merged.sqlite"
    first, second = (
        model_record("none", model="mnist_cnn", **_latency(1e-3)),
        model_record("quant.int8", model="mnist_cnn", **_latency(2e-3)),
    )
    commit = {"commit": _commit(0), "dirty": False}
    with open_store(path) as store:
        ids = []
        for run_id, record in (("shard-1", first), ("shard-2", second)):
            store.start_run(run_id, {"shard": {"index": 1, "count": 2}}, [], {}, commit, None)
            ids.append((store.add_record(run_id, record), record.cell_id))
            store.finish_run(run_id, "finished")
        store.start_run("merged-1", {"merged_from": ["shard-1", "shard-2"]}, [], {}, commit, None)
        for record_id, cell_id in ids:
            store.reuse("merged-1", cell_id, record_id)
        store.finish_run("merged-1", "finished")
    history = _history(path)
    assert [run.run_id for run in history.runs] == ["merged-1"]
    assert len(history.series) == 2 and all([p.run for p in s.points] == [0] for s in history.series)
