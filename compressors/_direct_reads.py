"""Which layers a model's own code reads past: modules that take a child layer's `.weight` instead of calling the
layer (torchvision's ShiftedWindowAttention passes `self.qkv.weight` to F.linear; torch's MultiheadAttention passes
`self.out_proj.weight` to its fused kernel), so swapping that layer for another module breaks the read, or would
leave the swapped module unused.

Found without running the model (a compressor's `finalize` has no input): a torch.fx symbolic trace records each
parameter the code reads as a `get_attr` node, and each module it calls as `call_module`. Where fx cannot trace a
model, the modules swapped in (`Replacement`, the CSR layers) raise `WeightReadPast` at the read itself, so the cell
is still skipped with the suite's reason rather than failed with a bare AttributeError.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Collection, Sequence
from types import FrameType

import torch.fx
from torch import nn

from compressors.base import CompressorLimit

__all__ = [
    "Replacement", "WeightReadPast", "direct_readers", "kept_for_readers", "layer_kind", "read_past_reason",
    "reading_module",
]  # fmt: skip


class WeightReadPast(CompressorLimit, AttributeError):
    """Raised where code reads the `.weight` of a layer a compressor swapped for modules that have none.

    A `CompressorLimit`, so the cell is skipped with the reason wherever the read happens (export, evaluation, MAC
    counting), and an `AttributeError`, so `hasattr(module, "weight")` stays False as for any module without one.
    """


def reading_module(frame: FrameType | None) -> str:
    """The class of the module whose method is running in `frame` (the `self` of `self.qkv.weight`), else a
    stand-in."""
    if frame is not None and frame.f_code.co_argcount:
        first = frame.f_locals.get(frame.f_code.co_varnames[0])
        if isinstance(first, nn.Module):
            return type(first).__name__
    return "a module of the model"


def layer_kind(layer: nn.Module) -> str:
    """How a reason names a layer: "Linear" (torch's subclasses too, MultiheadAttention's `out_proj`), else its
    class."""
    return "Linear" if isinstance(layer, nn.Linear) else type(layer).__name__


def read_past_reason(readers: Collection[str], layers: Collection[str], replacement: str) -> str:
    """Why `replacement` cannot stand in for layers (class names `layers`) whose `.weight` the modules `readers`
    (class names) read themselves, in one line."""
    who = " and ".join(sorted(set(readers)))
    verb, whose = ("reads", "its") if len(set(readers)) == 1 else ("read", "their")
    what = "/".join(sorted(set(layers)))
    return f"{who} {verb} {whose} {what}'s .weight directly, so {replacement} cannot replace it"


def kept_for_readers(model: nn.Module, layers: Sequence[tuple[str, nn.Module]], replacement: str) -> dict[str, str]:
    """Which of `layers` (name, module) must stay as they are because code of `model` reads their `.weight`: a
    compressor that swaps layers for `replacement` leaves these and swaps the rest.

    Returns:
        Layer name -> the reason it is kept, in `layers` order; empty where fx cannot trace the model (the
        `Replacement` swapped in then raises `WeightReadPast` at the read).
    """
    readers = direct_readers(model, [name for name, _ in layers]) or {}
    return {
        name: read_past_reason([readers[name]], [layer_kind(layer)], replacement)
        for name, layer in layers
        if name in readers
    }


class Replacement(nn.Sequential):
    """Layers standing in for one Linear or Conv2d (a factorized pair, a depthwise-separable pair).

    Reading the `.weight` the replaced layer had raises `WeightReadPast` naming the reader, not a bare
    AttributeError. Only eager Python goes through `__getattr__`; TorchScript never compiles it. Subclasses name the
    limit's action and themselves.
    """

    action = "replace layers in"
    replacement = "a replacement"

    def __getattr__(self, name: str) -> torch.Tensor | nn.Module:
        if name == "weight":
            # Frame 1 is the code that wrote `<module>.<layer>.weight`; the layers are read from `__dict__` so that
            # a half-built copy (deepcopy, unpickling) cannot recurse back here.
            first = next(iter((self.__dict__.get("_modules") or {}).values()), None)
            kind = layer_kind(first) if first is not None else "layer"
            reason = read_past_reason([reading_module(sys._getframe(1))], [kind], self.replacement)
            raise WeightReadPast(self.action, reason)
        return super().__getattr__(name)


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
