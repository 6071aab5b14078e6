"""How a compressor reads in a report: its short name, its family, the parameters its label always shows, how a
parameter's value reads, and which figures it belongs in.

Each config class declares its own (`CompressorConfig.presentation`), so a new compressor gets a label, a colour and
its rows in every table and figure without an edit in `bench/`, and the report never keeps a list of compressors
that goes stale. It is plain data, free of torch, so the read-only commands that only name cells stay light.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["CSR", "SERIES", "Presentation", "ValueFormat", "percent", "template", "words"]

SERIES = ("unstructured, dense kernels", "unstructured, CSR kernels", "channel pruning")
"""The series of the headline figure (speedup against MACs removed) and of the finding, in legend order. The set is
fixed because the finding is a claim about exactly these three; a compressor joins one by declaring it."""

CSR = "csr"
"""The value of a config's `execution` parameter that runs its weights on sparse (CSR) kernels."""

ValueFormat = Callable[[Any], str]
"""How one parameter's value reads in a label: the value (as stored, or as the text of a chain stage) -> words."""


def percent(value: Any) -> str:
    """A fraction as a percentage without trailing zeros: 0.9 -> `90%`, 0.125 -> `12.5%`."""
    return f"{100 * float(value):g}%"


def template(text: str) -> ValueFormat:
    """The value put in the `{}` of `text`: `template("{}-bit")` reads 4 as `4-bit`."""
    return text.format


def words(replacements: Mapping[str, str]) -> ValueFormat:
    """A value replaced by a shorter word where `replacements` has one (`confidence` -> `conf`), else as it is."""
    table = dict(replacements)
    return lambda value: table.get(str(value), str(value))


@dataclass(frozen=True)
class Presentation:
    """What a report needs to name, group and draw a compressor's cells; every field has a default that fits a
    compressor that declares nothing (its registered name, the family "other", in no special figure).

    Attributes:
        short: The compressor's name in a label (`unstr`, `int8 dyn`); empty: its registered name.
        family: The family its cells are coloured, ordered and filtered by. The families the suite knows have a fixed
            legend place and colour (`bench.labels.FAMILIES`); a new word is a family of its own, placed after them.
        headline: The parameters a label always shows, first and in this order (the level a sweep varies); the
            others show only where they differ from the config's default.
        formats: Parameter -> how its value reads in a label; any other reads as its value where that is a word,
            else as `key=value`.
        csr_family: The family of a variant whose `execution` is "csr", where running on sparse kernels sets it
            apart from the dense-kernel cells; None keeps `family` however it executes.
        series: The headline series (`SERIES`) its cells are points of; None: not in the headline figure.
        csr_series: The series of a variant whose `execution` is "csr"; None: `series`.
        bit_codes: Whether it stores weights as bit codes (`Compressed.codes`), so the bits figure (bytes and top-1
            against bits per weight) draws it.
        stages: The parameter holding a chain of stages (`name(key=value;...)+...`), which a label shows as each
            stage's short name and headline; None for a compressor of one stage.
    """

    short: str = ""
    family: str = "other"
    headline: tuple[str, ...] = ()
    formats: Mapping[str, ValueFormat] = field(default_factory=dict, hash=False)
    csr_family: str | None = None
    series: str | None = None
    csr_series: str | None = None
    bit_codes: bool = False
    stages: str | None = None

    def __post_init__(self) -> None:
        if not self.family.strip():
            raise ValueError("presentation family must be a non-empty word")
        for name, series in (("series", self.series), ("csr_series", self.csr_series)):
            if series is not None and series not in SERIES:
                raise ValueError(f"presentation {name} must be one of {', '.join(SERIES)}; got {series!r}")
        # object.__setattr__ is the documented way to normalize fields of a frozen dataclass; a read-only view keeps
        # one class's formats from being changed through another's.
        object.__setattr__(self, "headline", tuple(self.headline))
        object.__setattr__(self, "formats", MappingProxyType(dict(self.formats)))

    def parameters(self) -> set[str]:
        """Every parameter this presentation names, for the registry to check against the config's fields."""
        named = {*self.headline, *self.formats}
        if self.stages is not None:
            named.add(self.stages)
        if self.csr_family is not None or self.csr_series is not None:
            named.add("execution")
        return named

    def family_of(self, params: Mapping[str, Any]) -> str:
        """The family of a cell with these parameters."""
        if self.csr_family is not None and params.get("execution") == CSR:
            return self.csr_family
        return self.family

    def series_of(self, params: Mapping[str, Any]) -> str | None:
        """The headline series of a cell with these parameters, or None where it is in none."""
        if self.csr_series is not None and params.get("execution") == CSR:
            return self.csr_series
        return self.series

    def value_text(self, key: str, value: Any) -> str:
        """How parameter `key` = `value` reads in a label: by its format, else the value where it is a word (not a
        number), else `key=value`."""
        shown = self.formats.get(key)
        if shown is not None:
            return shown(value)
        if isinstance(value, str) and value.replace("_", "").isalnum() and not value.isdigit():
            return value
        return f"{key}={value}"
