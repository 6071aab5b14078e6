"""Models -> TorchScript files the timing worker loads without this package and without unpickling objects."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

__all__ = ["save_torchscript"]


def save_torchscript(model: nn.Module, example_input: torch.Tensor, path: Path) -> Path:
    """Script `model` (trace it if it cannot be scripted) and save it to `path`.

    Scripting keeps control flow; tracing is the fallback for architectures TorchScript's compiler rejects, and is
    exact for the feed-forward models measured here.
    """
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compiled = torch.jit.script(model)
        except Exception:  # noqa: BLE001 - any scripting failure means: fall back to tracing
            with torch.inference_mode(False), torch.no_grad():
                compiled = torch.jit.trace(model, example_input)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.jit.save(compiled, str(path))
    return path
