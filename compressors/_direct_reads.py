"""Which layers a model's own code reads past: modules that take a child layer's `.weight` instead of calling the
layer (torchvision's ShiftedWindowAttention passes `self.qkv.weight` to F.linear; torch's MultiheadAttention passes
`self.out_proj.weight` to its fused kernel), so swapping that layer for another module breaks the read, or would
leave the swapped module unused.

Found without running the model (a compressor's `finalize` has no input): a torch.fx symbolic trace records each
parameter the code reads as a `get_attr` node, and each module it calls as `call_module`.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection

import torch.fx
from torch import nn

__all__ = ["direct_readers"]


def direct_readers(model: nn.Module, layers: Collection[str]) -> dict[str, str] | None:
    """Which of `layers` (module names in `model`) have their `.weight` read by other code than their own forward.

    Two rules over the fx graph, with fx's default leaves (torch's own modules are not traced into):
    - a `get_attr` node `<layer>.weight`: the module whose forward ran it (fx's `nn_module_stack`) read it;
    - a `call_module` node of a module that holds one of `layers` below it (torch's MultiheadAttention and
      Transformer layers): torch's code inside reads its layers' weights (MultiheadAttention's `out_proj` always,
      the Transformer layers' `linear1`/`linear2` on their fast path), so the holder counts as the reader.

    Args:
        model: The model, not changed (fx only patches torch for the time of the trace).
        layers: Names of the layers that would be swapped; the model itself ("") is never read past.

    Returns:
        Layer name -> class name of the module that reads it, for the layers that are read; None when fx cannot
        trace the model (data-dependent control flow), in which case nothing is known.
    """
    wanted = {name for name in layers if name}
    if not wanted:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = torch.fx.Tracer().trace(model)
    except Exception:  # noqa: BLE001 - any tracing failure means: fx cannot tell, the CSR modules refuse at run time
        return None
    readers: dict[str, str] = {}
    for node in graph.nodes:
        if node.op == "get_attr" and isinstance(node.target, str):
            owner, _, attribute = node.target.rpartition(".")
            if owner in wanted and attribute == "weight":
                readers.setdefault(owner, _running_module(model, node, owner))
        elif node.op == "call_module" and isinstance(node.target, str) and node.target not in wanted:
            inside = [name for name in wanted if name.startswith(f"{node.target}.")]
            holder = type(model.get_submodule(node.target)).__name__
            for name in inside:
                readers.setdefault(name, holder)
    return {name: readers[name] for name in layers if name in readers}


def _running_module(model: nn.Module, node: torch.fx.Node, layer: str) -> str:
    """The class of the module whose forward made `node`, from fx's module stack; the layer's parent if fx kept
    none."""
    stack = node.meta.get("nn_module_stack") or {}
    for entry in reversed(list(stack.values())):
        if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], type):
            return entry[1].__name__
    return type(model.get_submodule(layer.rpartition(".")[0])).__name__
