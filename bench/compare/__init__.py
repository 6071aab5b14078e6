"""Compare two runs cell by cell, noise-aware: is the candidate slower, faster, smaller, less accurate?

`compare_runs(base, cand, rules)` judges every cell matched by cell id and target; `compare_cell` judges one.
The rules: `bench.compare.stats` (timing: threshold, Mann-Whitney U and a bootstrap interval),
`bench.compare.metrics` (each metric, machines, flags, the layer sweep) and `bench.compare.verdicts` (statuses and
the cell's verdict). `bench.compare.sources` reads a side from a store or an export; `bench.compare.render` prints.
"""

from bench.compare.comparison import Comparison, compare_runs
from bench.compare.metrics import MetricChange
from bench.compare.rules import METRICS, OUTCOMES, VERDICTS, Rules, parse_fail_on
from bench.compare.sources import Side, from_export, from_store, resolve
from bench.compare.verdicts import CellComparison, compare_cell

__all__ = [
    "compare_runs", "compare_cell", "Comparison", "CellComparison", "MetricChange", "Rules", "Side",
    "METRICS", "OUTCOMES", "VERDICTS", "parse_fail_on", "resolve", "from_store", "from_export",
]  # fmt: skip
