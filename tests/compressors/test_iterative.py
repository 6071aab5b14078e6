"""prune.iterative: the masks of each round, what each rewind resets the survivors to, the budget split and the
refusals, on digits_cnn with a Training built by hand around the suite's fine-tuning loop."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from bench.measure.accuracy import top1
from bench.models.data import load_dataset
from bench.models.registry import resolve_model
from bench.models.training import fit
from compressors import Compressed, Training, TrainingFacts, get
from compressors.iterative import IterativePruning
from compressors.unstructured import UnstructuredPruning, prunable_layers
from tests.compressors.conftest import IGNORE_UNCHECKED_CSR

pytestmark = IGNORE_UNCHECKED_CSR

_REFERENCE_STEPS = 60
_EARLY_STEP = 7


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


@dataclass
class Reference:
    """digits_cnn trained briefly from its seeded initialization, with that initialization and an early point."""

    model: nn.Module
    initial: dict[str, torch.Tensor]
    early: dict[str, torch.Tensor]


@pytest.fixture(scope="module")
def reference() -> Reference:
    data = load_dataset("digits")
    model = resolve_model("digits_cnn").build()
    initial = _state(model)
    fit(model, data.train, _EARLY_STEP, seed=0)
    early = _state(model)
    fit(model, data.train, _REFERENCE_STEPS - _EARLY_STEP, seed=1)
    return Reference(model, initial, early)


@dataclass
class Call:
    """What one call of the training loop was handed: the model's state as it began, its masks and steps."""

    state: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    steps: int


@dataclass
class Lender:
    """Builds the `Training` the suite would lend, and records what each call of its loop was handed."""

    reference: Reference
    steps: int
    seed: int = 0
    calls: list[Call] = field(default_factory=list)
    rewound_to: list[int] = field(default_factory=list)

    def fit(
        self,
        model: nn.Module,
        steps: int,
        *,
        masks: Mapping[str, torch.Tensor] | None = None,
        loss: object = None,
        seed: int | None = None,
    ) -> None:
        self.calls.append(Call(_state(model), dict(masks or {}), steps))
        train = load_dataset("digits").train
        fit(model, train, steps, masks=masks, seed=self.seed if seed is None else seed)

    def rewound_state(self, step: int) -> dict[str, torch.Tensor]:
        self.rewound_to.append(step)
        return self.reference.early

    def training(self, *, initial: bool = True) -> Training:
        return Training(
            steps=self.steps,
            seed=self.seed,
            fit=self.fit,
            evaluate=lambda model: top1(model, load_dataset("digits").test),
            initial_state=self.reference.initial if initial else None,
            rewound_state=self.rewound_state if initial else None,
            reference_steps=_REFERENCE_STEPS if initial else None,
        )


def _run(config: IterativePruning, reference: Reference, steps: int, seed: int = 0) -> tuple[Lender, Compressed]:
    lender = Lender(reference, steps, seed)
    x = torch.zeros(1, 1, 8, 8)
    return lender, config.apply_trained(reference.model, x, (), lender.training())


def test_is_registered_as_a_compressor_that_trains() -> None:
    assert get("prune.iterative") is IterativePruning
    assert IterativePruning.trains and IterativePruning().recoverable


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize(("rate", "rounds"), [(0.5, 1), (0.5, 3), (0.2, 4)])
def test_mask_after_r_rounds_has_sparsity_one_minus_survival_to_the_r(
    reference: Reference, scope: str, rate: float, rounds: int
) -> None:
    lender, result = _run(IterativePruning(rate=rate, rounds=rounds, scope=scope), reference, steps=2 * rounds)
    assert len(lender.calls) == rounds
    previous: dict[str, torch.Tensor] = {}
    for round_index, call in enumerate(lender.calls, start=1):
        masks = call.masks
        expected = 1 - (1 - rate) ** round_index
        sizes = [mask.numel() for mask in masks.values()]
        pruned = [int((~mask).sum()) for mask in masks.values()]
        if scope == "global":
            assert sum(pruned) == round(expected * sum(sizes))
        else:
            assert pruned == [round(expected * size) for size in sizes]
        # A weight pruned once stays pruned: each round's mask lies inside the last one.
        for name, mask in previous.items():
            assert not torch.any(masks[name] & ~mask), name
        previous = masks
    info = result.info
    assert [r["sparsity"] for r in info["per_round"]] == pytest.approx(
        [1 - (1 - rate) ** r for r in range(1, rounds + 1)], abs=1e-3
    )
    assert info["sparsity_achieved"] == pytest.approx(1 - (1 - rate) ** rounds, abs=1e-3)


def test_rewind_init_restores_exactly_the_stored_initial_values_on_the_survivors(reference: Reference) -> None:
    lender, _ = _run(IterativePruning(rate=0.5, rounds=3, rewind="init"), reference, steps=6)
    for call in lender.calls:
        state, masks = call.state, call.masks
        for name, initial in reference.initial.items():
            if name in masks:
                assert torch.equal(state[name][masks[name]], initial[masks[name]]), name
                assert torch.all(state[name][~masks[name]] == 0), name
            else:
                assert torch.equal(state[name], initial), name  # biases rewind too


def test_rewind_early_restores_the_reference_after_k_steps(reference: Reference) -> None:
    config = IterativePruning(rate=0.5, rounds=2, rewind="early", rewind_step=_EARLY_STEP)
    lender, _ = _run(config, reference, steps=4)
    assert lender.rewound_to == [_EARLY_STEP]  # replayed once, not once per round
    for call in lender.calls:
        state, masks = call.state, call.masks
        for name, mask in masks.items():
            assert torch.equal(state[name][mask], reference.early[name][mask]), name
            assert not torch.equal(state[name][mask], reference.initial[name][mask]), name


def test_rewind_none_starts_each_round_from_the_trained_weights(reference: Reference) -> None:
    lender, result = _run(IterativePruning(rate=0.5, rounds=2, rewind="none"), reference, steps=4)
    first = lender.calls[0].state
    trained = reference.model.state_dict()
    for name, mask in lender.calls[0].masks.items():
        assert torch.equal(first[name][mask], trained[name][mask]), name
    # The second round starts where the first one's training ended, not from the reference.
    second = lender.calls[1].state
    assert not torch.equal(second["0.bias"], trained["0.bias"])


def test_reinit_keeps_the_tickets_masks_and_redraws_the_values(reference: Reference) -> None:
    ticket_lender, ticket = _run(IterativePruning(rate=0.5, rounds=3, rewind="init"), reference, steps=6)
    lender, control = _run(IterativePruning(rate=0.5, rounds=3, rewind="reinit"), reference, steps=6)
    for name, mask in ticket.masks.items():
        assert torch.equal(control.masks[name], mask), name
    # Rounds before the last find the masks as the ticket does; the last trains a random draw under the mask.
    for before, call in zip(ticket_lender.calls[:-1], lender.calls[:-1], strict=True):
        for name, value in before.state.items():
            assert torch.equal(call.state[name], value), name
    last, masks = lender.calls[-1].state, lender.calls[-1].masks
    for name, mask in masks.items():
        assert torch.all(last[name][~mask] == 0), name
        assert not torch.equal(last[name][mask], reference.initial[name][mask]), name
        assert not torch.equal(last[name][mask], reference.model.state_dict()[name][mask]), name
    again, _ = _run(IterativePruning(rate=0.5, rounds=3, rewind="reinit"), reference, steps=6)
    for name, value in last.items():
        assert torch.equal(again.calls[-1].state[name], value), name
    other_seed, _ = _run(IterativePruning(rate=0.5, rounds=3, rewind="reinit"), reference, steps=6, seed=1)
    assert not torch.equal(other_seed.calls[-1].state["0.bias"], last["0.bias"])


def test_reinit_of_one_round_needs_no_initial_weights(reference: Reference) -> None:
    config = IterativePruning(rate=0.5, rounds=1, rewind="reinit")
    config.check_training(TrainingFacts(steps=10, reference_steps=None, initial_weights=False))
    lender = Lender(reference, steps=2)
    result = config.apply_trained(reference.model, torch.zeros(1, 1, 8, 8), (), lender.training(initial=False))
    assert result.info["sparsity_achieved"] == pytest.approx(0.5, abs=1e-3)


def test_budget_is_split_evenly_over_the_rounds_with_the_remainder_last(reference: Reference) -> None:
    lender, result = _run(IterativePruning(rate=0.5, rounds=3), reference, steps=11)
    assert [call.steps for call in lender.calls] == [3, 3, 5]
    info = result.info
    assert [r["steps"] for r in info["per_round"]] == [3, 3, 5]
    assert info["steps_trained"] == 11


def test_info_holds_each_rounds_top1_and_is_json_native(reference: Reference) -> None:
    _, result = _run(IterativePruning(rate=0.5, rounds=2, rewind="none"), reference, steps=20)
    info = result.info
    assert json.loads(json.dumps(info)) == info
    final = top1(result.model, load_dataset("digits").test)
    assert info["per_round"][-1]["top1"] == final
    assert all(0.0 < r["top1"] <= 1.0 for r in info["per_round"])


def test_reference_is_not_mutated(reference: Reference) -> None:
    before = _state(reference.model)
    _, result = _run(IterativePruning(rate=0.5, rounds=2), reference, steps=4)
    for name, value in reference.model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert result.model is not reference.model


def test_untrained_apply_is_one_shot_pruning_to_the_final_sparsity(reference: Reference) -> None:
    x = torch.zeros(1, 1, 8, 8)
    for scope in ("global", "layer"):
        iterative = IterativePruning(rate=0.5, rounds=3, scope=scope).apply(reference.model, x)
        one_shot = UnstructuredPruning(sparsity=0.875, scope=scope).apply(reference.model, x)
        assert iterative.masks.keys() == one_shot.masks.keys()
        for name, mask in one_shot.masks.items():
            assert torch.equal(iterative.masks[name], mask), (scope, name)


@pytest.mark.parametrize(("execution", "label"), [("dense", "dense kernels (zeros stored)"), ("csr", "sparse CSR")])
def test_executes_as_prune_unstructured_does(reference: Reference, execution: str, label: str) -> None:
    config = IterativePruning(rate=0.5, rounds=2, execution=execution)
    result = config.apply(reference.model, torch.zeros(1, 1, 8, 8))
    executable = config.finalize(result.model)
    assert executable.executed_as.startswith(label)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(executable.model(x), result.model(x), atol=1e-5, rtol=0)
    assert "execution" in IterativePruning.execution_fields
    assert config.training_key() == IterativePruning(rate=0.5, rounds=2).training_key()


def test_config_round_trips_through_json() -> None:
    config = IterativePruning(rate=0.25, rounds=4, rewind="early", rewind_step=100, scope="layer", execution="csr")
    assert IterativePruning.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert IterativePruning.from_dict({"rate": 1 / 2}) == IterativePruning(rate=0.5)
    assert IterativePruning(rate=0.5, rounds=6).final_sparsity == pytest.approx(0.984375)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"rate": 1.5}, ["rate", "(0, 1)", "1.5"]),
        ({"rate": 0}, ["rate", "(0, 1)", "0"]),
        ({"rate": 1.0}, ["rate", "(0, 1)", "1.0"]),
        ({"rate": -0.2}, ["rate", "(0, 1)", "-0.2"]),
        ({"rate": float("nan")}, ["rate", "(0, 1)", "nan"]),
        ({"rate": "half"}, ["rate", "number", "'half'"]),
        ({"rate": True}, ["rate", "number", "True"]),
        ({"rounds": 0}, ["rounds", ">= 1", "0"]),
        ({"rounds": 2.5}, ["rounds", "integer", "2.5"]),
        ({"rounds": True}, ["rounds", "integer", "True"]),
        ({"rate": 0.9, "rounds": 400}, ["rate=0.9", "rounds=400", "every weight"]),
        ({"rewind": "start"}, ["rewind", "init, early, none, reinit", "'start'"]),
        ({"rewind": "early", "rewind_step": -1}, ["rewind_step", ">= 0", "-1"]),
        ({"rewind": "early", "rewind_step": 1.5}, ["rewind_step", "integer", "1.5"]),
        ({"rewind": "init", "rewind_step": 100}, ["rewind_step", "rewind=init", "100"]),
        ({"scope": "net"}, ["scope", "global, layer", "'net'"]),
        ({"execution": "sparse"}, ["execution", "dense, csr", "'sparse'"]),
    ],
)
def test_bad_config_is_one_line_naming_field_and_value(params: dict[str, object], words: list[str]) -> None:
    with pytest.raises(ValueError) as error:
        IterativePruning.from_dict(params)
    message = str(error.value)
    assert "\n" not in message
    for word in words:
        assert word in message


_SUITE_TRAINED = TrainingFacts(steps=600, reference_steps=938, initial_weights=True)
_USER_WEIGHTS = TrainingFacts(steps=600, reference_steps=None, initial_weights=False)


@pytest.mark.parametrize(
    ("config", "facts", "words"),
    [
        (IterativePruning(rounds=6), TrainingFacts(5, 938, True), ["rounds=6", "one training step per round", "5"]),
        (IterativePruning(rewind="init"), _USER_WEIGHTS, ["rewind=init", "initial weights", "models the suite trains"]),
        (IterativePruning(rewind="early", rewind_step=10), _USER_WEIGHTS, ["rewind=early", "initial weights"]),
        (IterativePruning(rewind="reinit", rounds=2), _USER_WEIGHTS, ["rewind=reinit", "initial weights"]),
        (
            IterativePruning(rewind="early", rewind_step=2000),
            _SUITE_TRAINED,
            ["rewind_step=2000", "938 steps", "0..938"],
        ),
    ],
)
def test_check_training_refuses_in_one_line(config: IterativePruning, facts: TrainingFacts, words: list[str]) -> None:
    with pytest.raises(ValueError) as error:
        config.check_training(facts)
    message = str(error.value)
    assert "\n" not in message
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    "config",
    [
        IterativePruning(rewind="none"),
        IterativePruning(rewind="reinit", rounds=1),
        IterativePruning(rewind="early", rewind_step=938),
        IterativePruning(rounds=6),
    ],
)
def test_check_training_accepts_what_it_can_do(config: IterativePruning) -> None:
    facts = _USER_WEIGHTS if config.rewind in ("none", "reinit") else _SUITE_TRAINED
    config.check_training(facts)
    config.check_training(_SUITE_TRAINED)


def test_a_model_with_nothing_to_prune_is_refused(reference: Reference) -> None:
    lender = Lender(reference, steps=2)
    with pytest.raises(ValueError, match="no nn.Conv2d or nn.Linear"):
        IterativePruning(rounds=1).apply_trained(nn.ReLU(), torch.zeros(1), (), lender.training())


def test_prunable_layers_are_those_of_prune_unstructured(reference: Reference) -> None:
    result = IterativePruning(rate=0.5, rounds=1).apply(reference.model, torch.zeros(1, 1, 8, 8))
    assert set(result.masks) == {f"{name}.weight" for name, _ in prunable_layers(reference.model)}
