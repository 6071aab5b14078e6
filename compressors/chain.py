"""`chain`: several compressors applied in order, e.g. prune -> quantize, as one cell of the matrix.

Stages are written `NAME(KEY=VALUE;KEY=VALUE)` joined by `+`, for example
`prune.unstructured(sparsity=0.9;scope=layer)+quant.bits(bits=4)`: one string, so a chain is a single config
value in a TOML file, on the command line and in a stored record.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from compressors._checks import parse_value
from compressors.base import Compressed, CompressorConfig, CompressorLimit
from compressors.presentation import Presentation
from compressors.registry import get, register

if TYPE_CHECKING:
    import torch
    from torch import nn

    from compressors.base import Executable

__all__ = ["Chain", "parse_stages"]

_STAGE = re.compile(r"^\s*([a-z][a-z0-9_.]*)\s*(?:\((.*)\))?\s*$")


def parse_stages(spec: str) -> list[CompressorConfig]:
    """Parse a chain spec into validated stage configs.

    Raises:
        ValueError: a malformed stage, an unknown compressor, a nested chain, an invalid parameter, or fewer
            than two stages.
    """
    stages: list[CompressorConfig] = []
    for text in spec.split("+"):
        match = _STAGE.match(text)
        if match is None:
            raise ValueError(f"stages: expected NAME(KEY=VALUE;...) joined by '+', got {text.strip()!r}")
        name, arguments = match.group(1), match.group(2) or ""
        if name == "chain":
            raise ValueError("stages: a chain cannot contain a chain")
        params: dict[str, Any] = {}
        for assignment in filter(None, (part.strip() for part in arguments.split(";"))):
            key, sep, value = assignment.partition("=")
            if not sep:
                raise ValueError(f"stages: expected KEY=VALUE in {name}(...), got {assignment!r}")
            params[key.strip()] = parse_value(value.strip())
        try:
            stages.append(get(name).from_dict(params))
        except KeyError as error:
            raise ValueError(str(error)) from None
        except (TypeError, ValueError) as error:
            raise ValueError(f"stage {name}: {error}") from None
    if len(stages) < 2:
        raise ValueError(f"stages: a chain needs at least two stages joined by '+', got {spec!r}")
    return stages


@register("chain")
@dataclass(frozen=True)
class Chain(CompressorConfig):
    """Applies its stages in order; each stage compresses what the previous one produced.

    The result executes as the last stage makes it execute. Masks of an earlier stage are kept only where the
    final weights still honour them (a later stage may undo sparsity: `info` says so rather than pretending), and
    only the last stage's codes describe the final weights. `Compressed.stages` keeps every stage's result so the
    size of each step can be measured.

    Attributes:
        stages: `NAME(KEY=VALUE;...)` joined by `+`, at least two, no nested chain.
    """

    presentation = Presentation(short="chain", family="chain", stages="stages")

    stages: str = "prune.unstructured(sparsity=0.9)+quant.bits(bits=4)"

    def __post_init__(self) -> None:
        if not isinstance(self.stages, str):
            raise ValueError(f"stages must be a string like NAME(KEY=VALUE)+NAME(...), got {self.stages!r}")
        parse_stages(self.stages)

    @property
    def recoverable(self) -> bool:
        return all(stage.recoverable for stage in parse_stages(self.stages))

    def check(self, model: nn.Module) -> None:
        """Checks the first stage against `model`; later stages see a model only `apply` can produce."""
        parse_stages(self.stages)[0].check(model)

    def apply(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor] = ()
    ) -> Compressed:
        """Runs every stage's `apply` on the previous stage's model (the first on a copy of `model`)."""
        import torch

        results: list[Compressed] = []
        current = model
        for index, stage in enumerate(parse_stages(self.stages)):
            try:
                result = stage.apply(current, example_input, calibration)
            except CompressorLimit as limit:
                raise CompressorLimit(limit.action, f"{limit.reason} (stage {index + 1}, {stage.name})") from limit
            results.append(result)
            current = result.model
        final = results[-1]
        parameters = dict(final.model.named_parameters())
        masks: dict[str, torch.Tensor] = {}
        undone: list[str] = []
        for index, result in enumerate(results[:-1]):
            for name, mask in result.masks.items():
                weight = parameters.get(name)
                if weight is not None and weight.shape == mask.shape and bool(torch.all(weight[~mask] == 0)):
                    masks[name] = masks[name] & mask if name in masks else mask
                else:
                    undone.append(f"stage {index + 1} mask of {name}")
        masks.update(final.masks)
        stages = [
            {"name": stage.name, **stage.to_dict(), "info": result.info}
            for stage, result in zip(parse_stages(self.stages), results, strict=True)
        ]
        info = {"stages": stages, "masks_undone_by_later_stages": undone}
        return Compressed(model=final.model, masks=masks, info=info, codes=final.codes, stages=results)

    def finalize(self, model: nn.Module) -> Executable:
        return parse_stages(self.stages)[-1].finalize(model)
