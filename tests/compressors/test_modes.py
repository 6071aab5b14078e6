"""eval_mode: inspection passes leave every submodule's training flag as it was."""

from __future__ import annotations

import pytest
from torch import nn

from compressors._modes import eval_mode


def test_flags_are_restored_per_module() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout())
    model.train()
    model[1].eval()
    with eval_mode(model):
        assert not any(module.training for module in model.modules())
    assert [module.training for module in model.modules()] == [True, True, False, True]


def test_flags_are_restored_after_an_error() -> None:
    model = nn.Sequential(nn.Linear(2, 2)).train()
    with pytest.raises(RuntimeError), eval_mode(model):
        raise RuntimeError("boom")
    assert all(module.training for module in model.modules())
