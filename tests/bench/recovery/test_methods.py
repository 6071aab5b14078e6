"""Every recovery method on a channel-pruned digits_cnn student, training from scratch step by step, and the
settings of the methods as a user gives them."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import compressors
from bench.config.run_config import load_config
from bench.errors import BenchError
from bench.measure.accuracy import top1
from bench.models.data import Split, load_dataset
from bench.models.registry import TrainRecipe, resolve_model
from bench.models.training import train
from bench.recovery.config import RecoveryConfig
from bench.recovery.job import RecoveryJob
from bench.recovery.methods import METHOD_PARAMS, RECOVERY_METHODS, recover
from bench.recovery.scratch import SCRATCH_METHODS, scratch_steps
from bench.run.matrix import expand
from tests.bench.conftest import run_main, write_fast_toml

_RECIPE = resolve_model("digits_cnn").recipe
assert _RECIPE is not None


@pytest.fixture(scope="module")
def teacher() -> nn.Module:
    return train(resolve_model("digits_cnn").build(), load_dataset("digits").train, _RECIPE)


def _pruned(teacher: nn.Module) -> compressors.Compressed:
    example = load_dataset("digits").train.x[:1]
    return compressors.get("prune.channel")(macs_removed=0.7).apply(teacher, example)


def _job(
    model: nn.Module, teacher: nn.Module, method: str, *, masks: dict[str, torch.Tensor] | None = None,
    reference_steps: int | None = 60, steps: int = 30, seed: int = 0, train_split: Split | None = None,
    recipe: TrainRecipe | None = _RECIPE, example: torch.Tensor | None = None,
) -> RecoveryJob:  # fmt: skip
    config = RecoveryConfig(method=(method,))
    settings = {"method": method, **{name: getattr(config, name) for name in METHOD_PARAMS[method]}}
    return RecoveryJob(
        model, masks or {}, teacher, train_split or load_dataset("digits").train, steps, seed, settings,
        reference_steps, example if example is not None else load_dataset("digits").train.x[:1], recipe,
    )  # fmt: skip


class _Steps:
    """Counts the training forward passes of a model (one per step) and keeps the weights of the first."""

    def __init__(self, model: nn.Module) -> None:
        self.count = 0
        self.first: dict[str, torch.Tensor] | None = None
        model.register_forward_pre_hook(self._seen)
        self._model = model

    def _seen(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if module.training:
            if self.first is None:
                self.first = {k: v.detach().clone() for k, v in self._model.state_dict().items()}
            self.count += 1


@pytest.mark.parametrize("method", list(RECOVERY_METHODS))
def test_each_method_recovers_a_channel_pruned_student(teacher: nn.Module, method: str) -> None:
    compressed = _pruned(teacher)
    test = load_dataset("digits").test
    # From scratch, the start is the redrawn architecture, not the pruned weights.
    start = compressors.reinitialize(copy.deepcopy(compressed.model), 0) if method in SCRATCH_METHODS else None
    before = top1(start if start is not None else compressed.model, test)
    steps = _Steps(compressed.model)
    facts = recover(_job(compressed.model, teacher, method))
    assert facts["method"] == method
    after = top1(compressed.model, test)
    assert after > max(before, 0.5), (before, after)
    assert steps.count == facts.get("steps", 30)
    assert not any(module._forward_pre_hooks for module in compressed.model.modules() if module is not compressed.model)


def test_scratch_e_starts_from_fresh_weights_and_trains_exactly_the_reference_steps(teacher: nn.Module) -> None:
    compressed = _pruned(teacher)
    pruned_weights = copy.deepcopy(compressed.model.state_dict())
    fresh = compressors.reinitialize(copy.deepcopy(compressed.model), 3).state_dict()
    steps = _Steps(compressed.model)
    facts = recover(_job(compressed.model, teacher, "scratch-e", reference_steps=47, seed=3))
    assert facts == {"method": "scratch-e", "steps": 47, "from": "random init", "lr": _RECIPE.lr,
                     "batch_size": _RECIPE.batch_size}  # fmt: skip
    assert steps.count == 47
    assert steps.first is not None
    assert all(torch.equal(steps.first[name], fresh[name]) for name in fresh)  # the seeded redraw, not the weights
    assert not torch.equal(steps.first["0.weight"], pruned_weights["0.weight"])


def test_scratch_keeps_a_pruned_pattern_as_part_of_the_architecture(teacher: nn.Module) -> None:
    example = load_dataset("digits").train.x[:1]
    compressed = compressors.get("prune.unstructured")(sparsity=0.8).apply(teacher, example)
    steps = _Steps(compressed.model)
    recover(_job(compressed.model, teacher, "scratch-e", masks=compressed.masks, reference_steps=5))
    params = dict(compressed.model.named_parameters())
    assert steps.first is not None
    for name, mask in compressed.masks.items():
        assert torch.all(steps.first[name][~mask] == 0) and torch.all(params[name][~mask] == 0), name
        assert torch.count_nonzero(params[name][mask]) > 0.9 * mask.sum()


def test_scratch_b_trains_the_references_compute_on_hand_computable_macs() -> None:
    # MACs per sample: reference 10*20 + 20*5 = 300; compressed 10*5 + 5*5 = 75, a quarter of them.
    reference = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    compressed = nn.Sequential(nn.Linear(10, 5), nn.ReLU(), nn.Linear(5, 5))
    generator = torch.Generator().manual_seed(0)
    split = Split(torch.randn(40, 10, generator=generator), torch.randint(0, 5, (40,), generator=generator))
    steps = _Steps(compressed)
    recipe = TrainRecipe(epochs=1, batch_size=8, lr=1e-3)
    job = _job(compressed, reference, "scratch-b", reference_steps=6, train_split=split, recipe=recipe,
               example=torch.zeros(1, 10))  # fmt: skip
    facts = recover(job)
    assert facts["steps"] == 24 and steps.count == 24
    assert facts["macs_ratio"] == pytest.approx(4.0)
    assert scratch_steps("scratch-b", 10, 300, 70) == 43  # 42.86, rounded
    assert scratch_steps("scratch-e", 10, 300, 70) == 10
    with pytest.raises(ValueError, match="one of scratch-e, scratch-b; got 'scratch-c'"):
        scratch_steps("scratch-c", 10, 300, 70)


def test_scratch_is_refused_for_a_model_the_suite_did_not_train(teacher: nn.Module) -> None:
    compressed = _pruned(teacher)
    with pytest.raises(compressors.CompressorLimit, match="only a model the suite trains"):
        recover(_job(compressed.model, teacher, "scratch-b", reference_steps=None))


def test_each_method_names_only_its_own_settings_so_existing_cells_keep_their_ids() -> None:
    base = {"models": ["digits_cnn"], "compressors": {"prune.channel": {}}, "layers": {"models": []},
            "engines": ["torchscript"]}  # fmt: skip
    (plain,) = expand(load_config(None, base))
    methods = ["finetune", "feature", "relational", "scratch-e", "scratch-b"]
    cells = expand(load_config(None, {**base, "recovery": {"method": methods, "hint_weight": 2.0}}))
    assert [cell.to_json()["recovery"] for cell in cells] == [
        {"method": "finetune"},
        {"method": "feature", "hint_weight": 2.0},
        {"method": "relational", "distance_weight": 25.0, "angle_weight": 50.0},
        {"method": "scratch-e"},
        {"method": "scratch-b"},
    ]
    assert cells[0].id == plain.id


@pytest.mark.parametrize(
    ("recovery", "message"),
    [
        ({"method": ["fitnet"]}, "recovery.method must be one of finetune, distill, feature, relational, scratch-e, "
                                 "scratch-b; got 'fitnet'"),
        ({"hint_weight": -1.0}, "recovery.hint_weight must be a finite number > 0, got -1.0"),
        ({"hint_weight": 0}, "recovery.hint_weight must be a finite number > 0, got 0"),
        ({"distance_weight": -0.5}, "recovery.distance_weight must be a finite number >= 0, got -0.5"),
        ({"angle_weight": float("inf")}, "recovery.angle_weight must be finite"),
        ({"distance_weight": 0, "angle_weight": 0}, "both 0: relational would be plain fine-tuning"),
    ],
)  # fmt: skip
def test_bad_method_settings_are_one_line_errors(recovery: dict[str, Any], message: str) -> None:
    with pytest.raises(BenchError, match=re.escape(message)):
        load_config(None, {"models": ["digits_cnn"], "recovery": recovery})


@pytest.mark.parametrize(
    ("argv", "toml", "message"),
    [
        (["--recovery", "feature,fitnet"], "", "recovery.method must be one of"),
        ([], "[recovery]\nhint_weight = -2.0\n", "recovery.hint_weight must be a finite number > 0, got -2.0"),
        ([], "[recovery]\nangle_weight = -1\n", "recovery.angle_weight must be a finite number >= 0, got -1"),
    ],
)
def test_bad_method_settings_exit_2_through_the_cli(tmp_path: Path, argv: list[str], toml: str, message: str) -> None:
    config = write_fast_toml(tmp_path, toml)
    result = run_main(["run", "--config", str(config), "--models", "digits_cnn", "--compressors", "prune.channel",
                       "--no-layers", "--store", str(tmp_path / "s.sqlite"), *argv])  # fmt: skip
    assert result.code == 2
    assert message in result.err and len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "s.sqlite").exists()
