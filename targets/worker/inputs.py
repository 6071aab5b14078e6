"""What a pair's models run on: one seeded random tensor, or, for a ``stream`` pair, the real inputs it ships."""

from __future__ import annotations

from typing import Any, Callable

import torch

__all__ = ["load_inputs", "pair_inputs"]


def load_inputs(path: str) -> list[torch.Tensor]:
    """The stream's inputs, each a batch of one: the rows of the float tensor saved at ``path``.

    Loaded with ``weights_only=True``: the file is data, and nothing in it may run code on the device.

    Raises:
        ValueError: The file holds no float tensor of at least two dimensions and one row.
    """
    tensor = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point() or tensor.dim() < 2 or not len(tensor):
        found = f"a tensor of shape {tuple(tensor.shape)}" if isinstance(tensor, torch.Tensor) else type(tensor)
        raise ValueError(f"inputs {path} must hold a float tensor (N, ...) with N >= 1, got {found}")
    return [tensor[i : i + 1].float().contiguous() for i in range(len(tensor))]


def pair_inputs(pair: dict[str, Any], convert: Callable[[torch.Tensor], Any]) -> Any:
    """The input an engine feeds the pair's models, made ready by ``convert`` (to the device, to numpy): a list
    of the stream's inputs for a ``stream`` pair, else ``torch.randn`` of ``input_shape`` seeded with ``seed``."""
    if pair["kind"] == "stream":
        return [convert(x) for x in load_inputs(pair["inputs"])]
    torch.manual_seed(pair["seed"])
    return convert(torch.randn(pair["input_shape"]))
