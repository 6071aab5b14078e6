"""`dynamic.width` in a run: the width cells of one run train one model, and each reports the width it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import compressors
from bench import engines
from bench.config.run_config import load_config
from bench.config.studies import STUDIES_DIR
from bench.measure.accuracy import top1
from bench.measure.flops import macs_report
from bench.models.references import References
from bench.models.registry import resolve_model
from bench.run.baselines import Baselines
from bench.run.matrix import expand
from bench.run.plan import plan
from bench.run.prepare import Preparation
from compressors._slim_modules import Slimmable
from compressors.slimmable import SlimmableWidth
from tests.bench.conftest import run_main
from tests.compressors.test_slimmable import digits_cnn_at

WIDTHS = (0.25, 0.5, 1.0)
_TABLE: dict[str, Any] = {
    "models": ["digits_cnn"], "engines": ["torchscript"], "layers": {"models": []}, "finetune_steps": 20,
    "compressors": {"dynamic.width": {"widths": "0.25/0.5/1.0", "width": list(WIDTHS)}},
}  # fmt: skip


BUILT = {0.25: (4, 8, 16), 0.5: (8, 16, 32), 1.0: (16, 32, 64)}


def test_the_width_cells_of_a_run_train_once_and_report_their_own_width(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained: list[int] = []
    apply_trained = SlimmableWidth.apply_trained

    def counted(self, model, example_input, calibration, training):  # type: ignore[no-untyped-def]
        trained.append(training.steps)
        return apply_trained(self, model, example_input, calibration, training)

    monkeypatch.setattr(SlimmableWidth, "apply_trained", counted)
    cells = expand(load_config(None, _TABLE))
    assert [dict(cell.params)["width"] for cell in cells] == list(WIDTHS)
    (group,) = plan(cells)
    assert len(group.cells) == 3
    baselines = Baselines(References(tmp_path / "cache"), tmp_path / "artifacts")
    preparation = Preparation(baselines, tmp_path / "group")
    reference = baselines.reference("digits_cnn")
    x = reference.example_input(1)
    assert reference.test is not None
    for cell in group.cells:
        config = compressors.get(cell.compressor).from_dict(dict(cell.params))
        assert isinstance(config, SlimmableWidth)
        artifact = preparation.artifact(cell, config, engines.get("torchscript"))
        fields = artifact.fields
        built = digits_cnn_at(*BUILT[config.width])
        assert fields["sizes"].params_total == sum(p.numel() for p in built.parameters())
        assert fields["macs"].dense == macs_report(built, x)["macs_dense"]
        assert fields["macs"].baseline == macs_report(reference.model, x)["macs_dense"]
        # What is timed is the narrow model, and top-1 is that model's.
        timed = torch.jit.load(artifact.exported.path)
        assert [tuple(p.shape) for p in timed.parameters()] == [tuple(p.shape) for p in built.parameters()]
        assert fields["accuracy"].top1 == top1(timed, reference.test)
        assert fields["accuracy"].before_recovery is None
        assert fields["executed_as"].startswith(f"dense at width {config.width:g}")
        per_width = fields["compressor_info"]["per_width"][repr(config.width)]
        assert per_width["params"] == fields["sizes"].params_total
    assert trained == [20]
    assert preparation.counts() == {"compressed": 1, "candidates": 3, "artifacts": 3}
    preparation.close()


BAD = {
    "width set above one": (["--compressors", "dynamic.width:widths=0.5/1.5"],
                            "error: dynamic.width: widths must each be in (0, 1]; got 1.5 in '0.5/1.5'"),
    "width above one": (["--compressors", "dynamic.width:width=0.5,1.5"],
                        "error: dynamic.width: width must be in (0, 1], one of widths 0.25/0.5/0.75/1.0; got 1.5"),
    "width not trained": (["--compressors", "dynamic.width:width=0.3"],
                          "error: dynamic.width: width must be one of widths 0.25/0.5/0.75/1.0; got 0.3"),
    "widths as a grid": (["--compressors", "dynamic.width:widths=0.5,1.0"],
                         "error: dynamic.width: widths must be widths in (0, 1] joined by '/', one of them 1.0, e.g."
                         " '0.25/0.5/0.75/1.0'; got 0.5"),
    "no training": (["--compressors", "dynamic.width", "--finetune-steps", "0"],
                    "error: dynamic.width on digits_cnn: dynamic.width trains its widths together: it needs"
                    " finetune_steps > 0, got 0"),
}  # fmt: skip


@pytest.mark.parametrize("argv, message", BAD.values(), ids=BAD.keys())
def test_bad_widths_exit_2_with_one_line(argv: list[str], message: str, tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    result = run_main(["run", "--models", "digits_cnn", "--no-layers", *argv, "--store", str(store)])
    assert result.code == 2, result.err
    assert result.err.strip().splitlines() == [message]
    assert not store.exists()


def test_the_width_study_trains_one_model_per_loss_beside_a_pruned_model_per_budget() -> None:
    cells = expand(load_config(STUDIES_DIR / "dynamic.toml"))
    # The study's other model (mnist_resnet18, for the early exits) is no nn.Sequential: its width cells are skipped.
    width = ("dynamic.width", "mnist_cnn")
    width_groups = [group for group in plan(cells) if (group.cells[0].compressor, group.cells[0].model) == width]
    assert [len(group.cells) for group in width_groups] == [8, 8]  # 4 widths x 2 engines, per loss
    assert {dict(group.cells[0].params)["loss"] for group in width_groups} == {"labels", "inplace"}
    removed = sorted({dict(c.params)["macs_removed"] for c in cells if c.compressor == "prune.channel"})
    assert removed == [0.427, 0.737, 0.927]


def test_the_study_budgets_match_the_widths_measured_macs() -> None:
    model = resolve_model("mnist_cnn").build().eval()
    x = torch.zeros(1, 1, 28, 28)
    slim = SlimmableWidth().apply(model, x).model
    assert isinstance(slim, Slimmable)
    for width, removed in ((0.25, 0.927), (0.5, 0.737), (0.75, 0.427)):
        pruned = compressors.get("prune.channel")(macs_removed=removed).apply(model, x).model
        ratio = macs_report(pruned, x)["macs_dense"] / macs_report(slim.narrow(width), x)["macs_dense"]
        assert 1 / 1.06 < ratio < 1.06, (width, removed, ratio)
