"""The frame of the report's study sections: what the terminal shows of them."""

from __future__ import annotations

from bench.report.sections import summary_lines


def test_the_terminal_shows_headings_and_sentences_not_tables_or_figures() -> None:
    markdown = [
        "## Lottery ticket: mnist_cnn", "", "| a | b |", "|---|---|", "| 1 | 2 |", "",
        "At 0.50 sparsity the ticket beat reinit.", "", "![top-1 vs sparsity](lottery.png)", "", "",
    ]  # fmt: skip
    assert summary_lines(markdown) == [
        "", "Lottery ticket: mnist_cnn", "", "At 0.50 sparsity the ticket beat reinit.", "",
    ]  # fmt: skip
    assert summary_lines([]) == []
