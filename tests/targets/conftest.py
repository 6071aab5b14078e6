"""Real TorchScript artifacts and a shared CPU worker for the target tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch import nn

from targets import CpuTarget

FEATURES = 256
SLOW_REPEATS = 30


class _Fast(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(FEATURES, FEATURES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class _Slow(_Fast):
    """The same layer chained SLOW_REPEATS times: ~30x the work of ``_Fast``.

    Each call feeds the previous output so the JIT cannot drop the repeats as dead code.
    """

    def __init__(self) -> None:
        super().__init__()
        self.repeats = SLOW_REPEATS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.repeats):
            x = self.fc(x)
        return x


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Paths of TorchScript files: ``fast``, ``fast_copy`` (an identical file) and ``slow``."""
    folder = tmp_path_factory.mktemp("artifacts")
    torch.manual_seed(0)
    fast = torch.jit.script(_Fast())
    paths = {name: str(folder / f"{name}.pt") for name in ("fast", "fast_copy", "slow")}
    fast.save(paths["fast"])
    fast.save(paths["fast_copy"])
    torch.jit.script(_Slow()).save(paths["slow"])
    return paths


@pytest.fixture(scope="session")
def cpu_target() -> Iterator[CpuTarget]:
    """One worker for the tests that do not break it; starting one costs about a second (import torch)."""
    with CpuTarget() as target:
        yield target


@pytest.fixture(scope="session")
def make_pair(artifacts: dict[str, str]) -> Callable[..., dict[str, Any]]:
    """Factory of quick PAIRs by artifact name: short warm-up and budget, well under a second per pair."""

    def make(baseline: str, candidate: str, **options: Any) -> dict[str, Any]:
        return {
            "id": f"{baseline}-vs-{candidate}",
            "baseline": artifacts[baseline],
            "candidate": artifacts[candidate],
            "input_shape": [8, FEATURES],
            "warmup_s": 0.05,
            "budget_s": 0.3,
            "min_rounds": 4,
            **options,
        }

    return make
