"""The report's sections, one module each, in the two tables the report walks: sections inside each model's part
(given that model's records) and sections after the models (given the run's records).

Every section keeps the `Section` protocol of `base`: from records and the report's folder, its Markdown, its
terminal text fitted to the summary's width and its wide terminal text, all empty when the run has no cells of its
kind. A new section is a module here and one entry in one table; the Markdown, the HTML page and the terminal show
it with no change of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from bench.report.sections.base import Section, SectionText, StudySection, combined, rendered, summary_lines
from bench.report.sections.engines import ENGINES
from bench.report.sections.exit import EXIT
from bench.report.sections.layers import LAYERS
from bench.report.sections.lottery import LOTTERY
from bench.report.sections.recovery import RECOVERY
from bench.report.sections.width import WIDTH

__all__ = [
    "MODEL_SECTIONS", "RUN_SECTIONS", "Section", "SectionText", "StudySection", "combined", "rendered",
    "summary_lines",
]  # fmt: skip

MODEL_SECTIONS: tuple[Section, ...] = (ENGINES,)
"""Sections inside each model's part, after its table and figures, in the order the report shows them."""

RUN_SECTIONS: Mapping[str, tuple[Section, ...]] = MappingProxyType(
    {"layers": (LAYERS,), "studies": (LOTTERY, RECOVERY, WIDTH, EXIT)}
)
"""Sections after the models, in the order the report shows them, grouped by the part of the HTML page that holds
them (the key is that part's anchor)."""
