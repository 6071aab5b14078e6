"""What a comparison judges and how strictly: the metrics, the verdicts, and the frozen `Rules`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bench.errors import BenchError

__all__ = ["METRICS", "VERDICTS", "OUTCOMES", "Rules", "parse_fail_on"]

# The metrics a regression can be in, in the order tables show them and `--fail-on` names them.
METRICS = ("latency", "speedup", "accuracy", "size")
# A cell's verdict, in the order the summary counts them.
VERDICTS = ("regressed", "improved", "unchanged", "new", "gone", "failed", "inconclusive")
# What one metric of a matched cell can come to; "n/a" where a side lacks it or it cannot be compared.
OUTCOMES = ("regressed", "improved", "unchanged", "inconclusive", "n/a")


@dataclass(frozen=True)
class Rules:
    """How a comparison decides.

    Attributes:
        threshold: the smallest relative latency or speedup change that counts (0.05 = 5%).
        accuracy_tolerance: the smallest top-1 change that counts, in percentage points.
        fail_on: the metrics whose regressions fail the comparison (exit status 1).
        p_threshold: the Mann-Whitney p below which raw samples show a timing change (asv's default).
        accuracy_z: how many combined binomial standard errors a top-1 change must exceed (95%, two-sided).
        strict_machine: refuse to compare records from different machines instead of comparing speedups only.
        seed: the bootstrap's seed, so a comparison prints the same intervals every time.
        max_inconclusive: the largest share of cells measured on both sides that may stay inconclusive before the
            comparison says it judged too little (exit status 3, `bench.compare.verdicts.inconclusive_line`).
        latency_limit, speedup_limit: the change a timing must exceed when the run-to-run scatter of a comparison's
            cells raised it above `threshold` (set by `compare_runs`, see `bench.compare.scatter`); None: the
            threshold.
    """

    threshold: float = 0.05
    accuracy_tolerance: float = 0.5
    fail_on: tuple[str, ...] = METRICS
    p_threshold: float = 0.002
    accuracy_z: float = 1.96
    strict_machine: bool = False
    seed: int = 0
    max_inconclusive: float = 0.10
    latency_limit: float | None = None
    speedup_limit: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 1:
            raise BenchError(f"--threshold must be in (0, 1), a fraction (0.05 = 5%); got {self.threshold}")
        if not 0 <= self.accuracy_tolerance < 100:
            raise BenchError(
                f"--accuracy-tolerance must be in [0, 100) percentage points; got {self.accuracy_tolerance}"
            )
        if not 0 < self.p_threshold < 1:
            raise BenchError(f"the Mann-Whitney p threshold must be in (0, 1); got {self.p_threshold}")
        if not 0 <= self.max_inconclusive <= 1:
            raise BenchError(f"--max-inconclusive must be in [0, 1], a share of cells; got {self.max_inconclusive}")
        unknown = [metric for metric in self.fail_on if metric not in METRICS]
        if unknown:
            raise BenchError(f"--fail-on: unknown metric '{unknown[0]}' (accepted: {', '.join(METRICS)})")

    def limit(self, metric: str) -> float:
        """The relative change of a timing metric ("latency", "speedup") that counts."""
        raised = self.latency_limit if metric == "latency" else self.speedup_limit
        return raised if raised is not None else self.threshold


def parse_fail_on(text: str) -> tuple[str, ...]:
    """`--fail-on`'s comma-separated metrics, in table order; an empty or unknown item is refused."""
    items = [item.strip() for item in text.split(",")]
    bad = next((item for item in items if item not in METRICS), None)
    if bad is not None:
        shown = f"'{bad}'" if bad else "an empty item"
        raise BenchError(f"--fail-on: {shown} is not a metric (accepted: {', '.join(METRICS)}, comma-separated)")
    return _ordered(items)


def _ordered(metrics: Iterable[str]) -> tuple[str, ...]:
    chosen = set(metrics)
    return tuple(metric for metric in METRICS if metric in chosen)
