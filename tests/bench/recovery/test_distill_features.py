"""Feature (FitNet) and relational (RKD) distillation: the losses on tiny tensors, where the features are found,
and a channel-pruned digits_cnn student trained by each objective."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import compressors
from bench.models.data import load_dataset
from bench.models.registry import resolve_model
from bench.models.training import fit, train
from bench.recovery.distill_features import (
    captured_input,
    embedding_layer,
    feature_layer,
    feature_objective,
    hint_loss,
    relational_objective,
    rkd_angle_loss,
    rkd_distance_loss,
)


def _embeddings(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def test_rkd_losses_are_zero_for_identical_embeddings_and_positive_otherwise() -> None:
    teacher = _embeddings(8, 5, 0)
    assert rkd_distance_loss(teacher.clone(), teacher).item() == pytest.approx(0.0, abs=1e-7)
    assert rkd_angle_loss(teacher.clone(), teacher).item() == pytest.approx(0.0, abs=1e-7)
    other = _embeddings(8, 5, 1)
    assert rkd_distance_loss(other, teacher).item() > 1e-3
    assert rkd_angle_loss(other, teacher).item() > 1e-3


def test_rkd_relations_ignore_the_scale_of_either_embedding_and_its_width() -> None:
    student, teacher = _embeddings(6, 4, 2), _embeddings(6, 9, 3)
    distance, angle = rkd_distance_loss(student, teacher).item(), rkd_angle_loss(student, teacher).item()
    assert rkd_distance_loss(7.5 * student, teacher).item() == pytest.approx(distance, rel=1e-5)
    assert rkd_distance_loss(student, 0.1 * teacher).item() == pytest.approx(distance, rel=1e-5)
    assert rkd_angle_loss(3.0 * student, teacher).item() == pytest.approx(angle, rel=1e-5)
    # Relations compare samples with each other, so a student of another width is related to the teacher at once.
    assert rkd_distance_loss(student @ torch.eye(4, 7), student).item() == pytest.approx(0.0, abs=1e-7)


def test_rkd_angle_of_a_right_triangle_against_a_line() -> None:
    # Student: (0,0), (1,0), (0,1): angles 90, 45, 45 degrees. Teacher: three points on a line: 0 or 180 degrees.
    student = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    teacher = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    loss = rkd_angle_loss(student, teacher).item()
    assert 0 < loss < 1  # every cosine is in [-1, 1], so each smooth-L1 term is below 2 and most are 0
    assert rkd_angle_loss(teacher, teacher).item() == pytest.approx(0.0, abs=1e-7)


def test_rkd_distance_gradient_is_finite_for_coinciding_samples() -> None:
    student = torch.zeros(4, 3, requires_grad=True)
    rkd_distance_loss(student, _embeddings(4, 3, 4)).backward()
    assert student.grad is not None and torch.isfinite(student.grad).all()


def test_rkd_refuses_batches_too_small_or_of_different_samples() -> None:
    with pytest.raises(ValueError, match="at least 3 samples"):
        rkd_angle_loss(_embeddings(2, 3, 0), _embeddings(2, 3, 1))
    with pytest.raises(ValueError, match="same N samples"):
        rkd_distance_loss(_embeddings(4, 3, 0), _embeddings(5, 3, 1))


def test_hint_loss_is_the_mean_squared_error_and_checks_shapes() -> None:
    adapted, target = torch.ones(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)
    assert hint_loss(adapted, target).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="teacher map"):
        hint_loss(torch.ones(2, 3, 4, 4), torch.zeros(2, 5, 4, 4))


@pytest.fixture(scope="module")
def teacher() -> nn.Module:
    spec = resolve_model("digits_cnn")
    assert spec.recipe is not None
    return train(spec.build(), load_dataset("digits").train, spec.recipe)


def _pruned(teacher: nn.Module, macs_removed: float = 0.7) -> nn.Module:
    example = load_dataset("digits").train.x[:1]
    return compressors.get("prune.channel")(macs_removed=macs_removed).apply(teacher, example).model


def test_the_feature_map_is_the_flatten_input_and_the_embedding_the_last_linear_input(teacher: nn.Module) -> None:
    x = load_dataset("digits").train.x[:5]
    with captured_input(feature_layer(teacher)) as features, captured_input(embedding_layer(teacher)) as embedding:
        teacher(x)
    assert features.get().shape == (5, 32, 4, 4)
    assert embedding.get().shape == (5, 64)
    # No hook outlives its block: the model that is exported carries none.
    assert not any(module._forward_pre_hooks for module in teacher.modules())


def test_a_model_without_flatten_gives_the_last_linear_input_as_a_one_by_one_map() -> None:
    class Pooled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.fc = nn.Conv2d(1, 6, 3), nn.Linear(6, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.conv(x), 1), 1))

    model = Pooled()
    assert feature_layer(model) is model.fc
    objective = feature_objective(Pooled(), Pooled(), torch.zeros(1, 1, 8, 8), hint_weight=1.0, seed=0)
    assert [p.shape for p in objective.extra_parameters] == [(6, 6, 1, 1), (6,)]
    assert objective.facts == {"feature_map": "input of Linear 'fc'", "adapter": [6, 6]}
    with pytest.raises(ValueError, match="no nn.Linear"):
        embedding_layer(nn.Sequential(nn.Conv2d(1, 2, 3)))


def test_the_adapter_maps_the_pruned_students_channels_to_the_teachers(teacher: nn.Module) -> None:
    student = _pruned(teacher)
    example = load_dataset("digits").train.x[:1]
    objective = feature_objective(student, teacher, example, hint_weight=1.0, seed=0)
    kept = student[2].out_channels  # digits_cnn: conv, relu, conv (the map's channels), ...
    assert kept < 32
    assert objective.extra_parameters[0].shape == (32, kept, 1, 1)
    assert objective.facts == {"feature_map": "input of Flatten '5'", "adapter": [kept, 32]}
    again = feature_objective(student, teacher, example, hint_weight=1.0, seed=0)
    assert torch.equal(again.extra_parameters[0], objective.extra_parameters[0])  # the adapter is drawn seeded


def test_feature_maps_of_different_spatial_size_are_refused() -> None:
    student = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    teacher = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    with pytest.raises(ValueError, match="same spatial size"):
        feature_objective(student, teacher, torch.zeros(1, 1, 8, 8), hint_weight=1.0, seed=0)


def _hint(student: nn.Module, teacher: nn.Module, adapter: nn.Module) -> float:
    x = load_dataset("digits").test.x[:128]
    with torch.no_grad():
        with captured_input(feature_layer(teacher)) as target:
            teacher(x)
        with captured_input(feature_layer(student)) as features:
            student(x)
        return hint_loss(adapter(features.get()), target.get()).item()


def _adapter(weights: tuple[nn.Parameter, ...]) -> nn.Conv2d:
    weight, bias = weights
    adapter = nn.Conv2d(weight.shape[1], weight.shape[0], 1)
    adapter.load_state_dict({"weight": weight.detach().clone(), "bias": bias.detach().clone()})
    return adapter


def test_feature_distillation_trains_the_adapter_with_the_student_toward_the_teachers_map(teacher: nn.Module) -> None:
    student = _pruned(teacher)
    labels_only = copy.deepcopy(student)
    objective = feature_objective(student, teacher, load_dataset("digits").train.x[:1], hint_weight=1.0, seed=0)
    initial = _adapter(objective.extra_parameters)
    before = _hint(student, teacher, initial)
    digits = load_dataset("digits").train
    fit(student, digits, 30, loss=objective.loss, extra_parameters=objective.extra_parameters)
    fit(labels_only, digits, 30)
    trained = _adapter(objective.extra_parameters)
    assert not torch.equal(trained.weight, initial.weight)
    hinted = _hint(student, teacher, trained)
    assert hinted < before
    # The hint, not training as such, moved the map: labels alone leave it as far from the teacher's as it was.
    assert hinted < _hint(labels_only, teacher, initial)
    assert not any(module._forward_pre_hooks for module in student.modules())


def test_relational_distillation_brings_the_students_relations_toward_the_teachers(teacher: nn.Module) -> None:
    student = _pruned(teacher, macs_removed=0.9)
    labels_only = copy.deepcopy(student)
    objective = relational_objective(student, teacher, distance_weight=25.0, angle_weight=50.0)
    assert objective.extra_parameters == () and objective.facts == {"embedding": "input of Linear '8'"}
    before = _relations(student, teacher)
    fit(student, load_dataset("digits").train, 30, loss=objective.loss)
    fit(labels_only, load_dataset("digits").train, 30)
    related = _relations(student, teacher)
    assert related < before
    assert related < _relations(labels_only, teacher)


def _relations(student: nn.Module, teacher: nn.Module) -> float:
    x = load_dataset("digits").test.x[:128]
    with torch.no_grad():
        with captured_input(embedding_layer(teacher)) as t_emb:
            teacher(x)
        with captured_input(embedding_layer(student)) as s_emb:
            student(x)
        return rkd_distance_loss(s_emb.get(), t_emb.get()).item() + rkd_angle_loss(s_emb.get(), t_emb.get()).item()
