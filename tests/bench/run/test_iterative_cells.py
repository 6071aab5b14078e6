"""prune.iterative through `python -m bench`: bad input is one line and exit 2 before anything runs, and a seeded
lottery study gives the same figures twice."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.models.registry import resolve_model
from bench.records import ModelRecord
from bench.store.database import read_store
from tests.bench.conftest import run_main

_RUN = ["run", "--models", "digits_cnn", "--engines", "torchscript", "--no-layers", "--budget", "0.2"]

# digits_cnn's reference trains 15 epochs of ceil(1437 / 32) = 45 mini-batches.
BAD = {
    "rate above 1": (["prune.iterative:rate=1.5"], ["rate", "(0, 1)", "1.5"]),
    "rate 0": (["prune.iterative:rate=0"], ["rate", "(0, 1)", "0"]),
    "no rounds": (["prune.iterative:rounds=0"], ["rounds", ">= 1", "0"]),
    "unknown rewind": (["prune.iterative:rewind=start"], ["rewind", "init, early, none, reinit", "'start'"]),
    "rewind step past the reference's training": (
        ["prune.iterative:rewind=early:rewind_step=1000"],
        ["rewind_step=1000", "675 steps", "0..675"],
    ),
    "fewer steps than rounds": (["prune.iterative:rounds=6", "--finetune-steps", "4"], ["rounds=6", "4"]),
    "init without stored initial weights": (
        ["prune.iterative:rewind=init", "--weights", "digits_cnn={weights}"],
        ["rewind=init", "initial weights", "models the suite trains"],
    ),
}


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "digits.pt"
    torch.save(resolve_model("digits_cnn").build().state_dict(), path)
    return path


@pytest.mark.parametrize("name", BAD)
def test_bad_input_is_one_line_and_exit_2(name: str, tmp_path: Path, weights: Path) -> None:
    given, fragments = BAD[name]
    compressor, *flags = (arg.format(weights=weights) for arg in given)
    store = tmp_path / "s.sqlite"
    result = run_main([*_RUN, "--compressors", compressor, *flags, "--store", str(store)])
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    for fragment in fragments:
        assert fragment in lines[0]
    assert not store.exists()


def _figures(store: Path) -> list[tuple[str, str, float | None, list[float]]]:
    with read_store(store) as opened:
        records = [r for r in opened.records(opened.run().run_id) if isinstance(r, ModelRecord)]
    assert records and all(r.ok for r in records), [r.error for r in records]
    return sorted(
        (
            r.compressor,
            r.cell_id,
            r.accuracy.top1 if r.accuracy else None,
            [step["top1"] for step in r.compressor_info.get("per_round", [])],
        )
        for r in records
    )


@pytest.mark.slow
def test_a_seeded_study_gives_the_same_figures_twice(tmp_path: Path) -> None:
    study = tmp_path / "mini.toml"
    study.write_text(
        'models = ["digits_cnn"]\nengines = ["torchscript"]\nfinetune_steps = 30\n'
        "[recovery]\nseeds = [1]\n"
        '[compressors]\n"prune.iterative" = { rate = 0.5, rounds = 2, rewind = "init" }\n'
        '"prune.unstructured" = { sparsity = 0.75 }\n'
        "[timing]\nbudget_s = 0.2\n[layers]\nmodels = []\n"
    )
    figures = []
    for name in ("first", "second"):
        # Separate stores and model caches: the reference, its initial weights and the ticket are all made again.
        store = tmp_path / name / "s.sqlite"
        result = run_main(["run", "--config", str(study), "--store", str(store)])
        assert result.code == 0, result.err
        figures.append(_figures(store))
        report = run_main(["report", "--store", str(store), "--output", str(tmp_path / name / "report")])
        assert report.code == 0, report.err
        assert "Lottery tickets" in (tmp_path / name / "report" / "report.md").read_text()
    assert figures[0] == figures[1]
    ticket = next(f for f in figures[0] if f[0] == "prune.iterative")
    assert len(ticket[3]) == 2 and ticket[3][-1] == pytest.approx(ticket[2], abs=0.01)
