"""Break-even sparsity and the finding sentence, from hand-made numbers."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from bench.analysis.series import SERIES, Point, break_even, finding, speedup_series
from bench.records import ModelRecord, Sizes
from tests.bench.record_factory import model_record


def test_break_even_interpolates_log_speedup() -> None:
    phrase, value = break_even([(0.5, 0.5), (0.9, 2.0)])
    # log-linear: halfway between log 0.5 and log 2 is log 1
    assert value == pytest.approx(0.7)
    assert phrase == "0.700"
    phrase, value = break_even([(0.5, 0.25), (0.7, 0.5), (0.9, 1.0), (0.99, 3.0)])
    assert value == pytest.approx(0.9) and phrase == "0.900"
    _, value = break_even([(0.8, 0.5), (0.9, 4.0)])
    assert value == pytest.approx(0.8 + 0.1 * math.log(2) / math.log(8))


def test_break_even_first_point_wins() -> None:
    assert break_even([(0.5, 1.2), (0.9, 3.0)]) == ("<= 0.5", None)


def test_break_even_not_reached() -> None:
    assert break_even([(0.5, 0.2), (0.99, 0.9)]) == ("> 0.99 (not reached)", None)
    assert break_even([]) == ("n/a", None)


def _series(dense: float, csr: float, channel: float) -> dict[str, list[Point]]:
    return {
        SERIES[0]: [Point(0.5, 1.0, 0.98, 1.02, "d5"), Point(0.9, dense, dense - 0.02, dense + 0.02, "d9")],
        SERIES[1]: [Point(0.5, csr, csr - 0.02, csr + 0.02, "c5"), Point(0.9, csr, csr - 0.02, csr + 0.02, "c9")],
        SERIES[2]: [
            Point(0.5, channel, channel - 0.05, channel + 0.05, "p5"),
            Point(0.9, channel + 1, channel + 0.9, channel + 1.1, "p9"),
        ],
    }


def test_finding_reproduced() -> None:
    text = finding(_series(dense=1.01, csr=0.6, channel=1.8), "0.950", "m", "cpu t=1 b=1")
    assert text.startswith("Finding reproduced for m on cpu t=1 b=1")
    assert "NOT" not in text
    assert "1.01x on dense kernels" in text
    assert "layer-level break-even sparsity: 0.950" in text
    assert "CSR kernels never beat dense kernels" in text


def test_finding_not_reproduced_names_the_failed_part() -> None:
    text = finding(_series(dense=1.5, csr=0.6, channel=1.8), None, "m", "cpu t=1 b=1")
    assert text.startswith("Finding NOT reproduced for m on cpu t=1 b=1")
    assert "dense-kernel sparsity reached 1.50x" in text
    assert "CSR kernels were faster" not in text and "channel pruning was not reliably faster" not in text


def test_finding_not_reproduced_when_channel_is_not_faster() -> None:
    text = finding(_series(dense=1.0, csr=0.6, channel=1.05), None, "m", "here")
    assert "NOT reproduced" in text and "channel pruning was not reliably faster than 1.10x" in text


def test_finding_reports_where_csr_wins() -> None:
    text = finding(_series(dense=1.0, csr=1.3, channel=2.0), None, "m", "here")
    assert "NOT reproduced" in text and "CSR kernels were faster at sparsity <= 90%" in text
    assert "CSR kernels first beat dense at 50% of MACs removed (1.30x)" in text


def test_finding_needs_both_families() -> None:
    text = finding({SERIES[0]: [Point(0.5, 1.0, None, None, "d")]}, None, "m", "here")
    assert "needs unstructured" in text and "reproduced" not in text


def test_speedup_series_groups_and_sorts() -> None:
    def record(
        compressor: str, params: dict[str, Any], theoretical: float, speedup: float, status: str = "ok"
    ) -> ModelRecord:
        return model_record(compressor, params, status=status, theoretical=theoretical, speedup=speedup)

    records = [
        record("prune.unstructured", {"sparsity": 0.9, "execution": "dense"}, 10.0, 1.0),
        record("prune.unstructured", {"sparsity": 0.5, "execution": "dense"}, 2.0, 1.0),
        record("prune.unstructured", {"sparsity": 0.5, "execution": "csr"}, 2.0, 0.4),
        record("prune.channel", {"macs_removed": 0.5}, 2.0, 1.7),
        record("prune.channel", {"macs_removed": 0.7}, 3.0, 2.0, status="failed"),
        record("none", {}, 1.0, 1.0),
    ]
    series = speedup_series(records)[("m", "cpu t=1 b=1")]
    assert [p.x for p in series[SERIES[0]]] == pytest.approx([0.5, 0.9])
    assert [p.speedup for p in series[SERIES[1]]] == [0.4]
    assert [p.speedup for p in series[SERIES[2]]] == [1.7]


def test_pareto_front_keeps_only_points_no_other_beats() -> None:
    from bench.analysis.series import pareto_front

    points = [(10.0, 0.90, "a"), (5.0, 0.80, "b"), (7.0, 0.95, "c"), (12.0, 0.93, "d"), (5.0, 0.70, "e")]
    assert [label for _, _, label in pareto_front(points)] == ["b", "c"]


def test_smallest_bytes_takes_the_smallest_real_encoding_present() -> None:
    from bench.analysis.series import smallest_bytes

    sizes = Sizes(
        params_total=10, params_nonzero=10, dense_bytes=1000, csr_bytes=1500, gzip_bytes=700, packed_bytes=None
    )
    assert smallest_bytes(model_record(sizes=sizes)) == 700
    assert smallest_bytes(model_record(sizes=dataclasses.replace(sizes, huffman_bytes=90))) == 90
