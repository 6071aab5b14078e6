"""Recovery after compression: the distillation loss on a hand-computed example, and distillation end to end."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from bench.config.run_config import load_config
from bench.errors import BenchError
from bench.models.training import distillation_loss
from bench.run.matrix import expand
from tests.bench.conftest import run_main, tiny_run_args, write_fast_toml


def test_distillation_loss_matches_a_hand_computed_value() -> None:
    student = torch.tensor([[math.log(1.0), math.log(3.0)]])  # softmax at T=1: (0.25, 0.75)
    teacher = torch.tensor([[math.log(3.0), math.log(1.0)]])  # softmax at T=1: (0.75, 0.25)
    labels = torch.tensor([1])
    kl = 0.75 * math.log(0.75 / 0.25) + 0.25 * math.log(0.25 / 0.75)  # KL(teacher || student)
    cross_entropy = -math.log(0.75)
    expected = 0.3 * 1.0 * kl + 0.7 * cross_entropy
    assert distillation_loss(student, teacher, labels, temperature=1.0, alpha=0.3).item() == pytest.approx(
        expected, rel=1e-6
    )


def test_temperature_softens_both_sides_and_scales_by_t_squared() -> None:
    student = torch.tensor([[0.0, 2.0, 4.0]])
    teacher = torch.tensor([[4.0, 2.0, 0.0]])
    labels = torch.tensor([0])
    t = 4.0
    p_teacher = torch.softmax(teacher / t, dim=1)
    p_student = torch.softmax(student / t, dim=1)
    kl = float((p_teacher * (p_teacher / p_student).log()).sum())
    assert distillation_loss(student, teacher, labels, temperature=t, alpha=1.0).item() == pytest.approx(
        t * t * kl, rel=1e-5
    )


def test_identical_logits_leave_only_the_hard_term() -> None:
    logits = torch.randn(5, 10, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(5)
    hard = torch.nn.functional.cross_entropy(logits, labels).item()
    assert distillation_loss(logits, logits, labels, temperature=3.0, alpha=0.5).item() == pytest.approx(
        0.5 * hard, rel=1e-5
    )


def test_recovery_settings_are_validated_and_part_of_the_cell() -> None:
    with pytest.raises(BenchError, match="recovery.method must be one of finetune, distill.*; got 'magic'"):
        load_config(None, {"recovery": {"method": "magic"}})
    with pytest.raises(BenchError, match=r"recovery.alpha must be in \[0, 1\], got 1.5"):
        load_config(None, {"recovery": {"alpha": 1.5}})
    base = {"models": ["digits_cnn"], "compressors": {"prune.channel": {}}, "layers": {"models": []},
            "engines": ["torchscript"]}  # fmt: skip
    (finetuned,) = expand(load_config(None, base))
    (distilled,) = expand(load_config(None, {**base, "recovery": {"method": "distill"}}))
    assert finetuned.to_json()["recovery"] == {"method": "finetune"}
    assert distilled.to_json()["recovery"] == {"method": "distill", "temperature": 4.0, "alpha": 0.5}
    assert finetuned.id != distilled.id


def test_distillation_recovers_accuracy_end_to_end(tmp_path: Path) -> None:
    store = tmp_path / "results" / "bench.sqlite"
    args = tiny_run_args(
        store, write_fast_toml(tmp_path), "--recovery", "distill", compressors=["prune.channel:macs_removed=0.9"]
    )
    args[args.index("--finetune-steps") + 1] = "60"
    result = run_main([*args, "--wide"])
    assert result.code == 0, result.err
    assert "(distill, 60 steps)" in result.out
    wide_rows = result.out.splitlines()
    assert any(line.startswith("prune.channel criterion=l1 macs_removed=0.9 [distill]") for line in wide_rows)
    from bench.store.database import read_store

    with read_store(store) as opened:
        (record,) = opened.records(opened.run().run_id)
    assert record.recovery["method"] == "distill"
    accuracy = getattr(record, "accuracy", None)
    assert accuracy is not None and accuracy.top1 is not None and accuracy.before_recovery is not None
    assert accuracy.top1 > accuracy.before_recovery
