"""`python -m bench report`: which files `--format` writes, what `--wide` and `--open` print, and one line for a
bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.store.database import open_store
from tests.bench.conftest import run_main
from tests.bench.record_factory import model_record


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with one finished run of three cells, two of them on ONNX Runtime."""
    path = tmp_path / "results" / "bench.sqlite"
    path.parent.mkdir()
    with open_store(path) as opened:
        opened.start_run("r1", {"models": ["m"]}, [], {}, {})
        for record in (
            model_record(), model_record("prune.channel", {"macs_removed": 0.5}, speedup=1.8, theoretical=2.0),
            model_record("prune.channel", {"macs_removed": 0.5}, speedup=2.5, theoretical=2.0, engine="onnxruntime"),
        ):  # fmt: skip
            opened.add_record("r1", record)
        opened.finish_run("r1", "finished")
    return path


@pytest.mark.parametrize(("given", "written"), [("md", {"report.md"}), ("html", {"report.html"}),
                                                ("both", {"report.md", "report.html"})])  # fmt: skip
def test_format_writes_the_files_it_names(store: Path, given: str, written: set[str]) -> None:
    result = run_main(["report", "r1", "--store", str(store), "--format", given])
    assert result.code == 0, result.err
    folder = store.parent / "runs" / "r1"
    assert {path.name for path in folder.glob("report.*")} == written
    for name in written:
        assert str(folder / name) in result.out


def test_a_bad_format_is_one_line_and_exit_2_and_writes_nothing(store: Path) -> None:
    result = run_main(["report", "r1", "--store", str(store), "--format", "pdf"])
    assert result.code == 2
    assert result.err == "error: --format must be one of md, html, both; got 'pdf'\n"
    assert not (store.parent / "runs").exists()


def test_summary_by_default_and_every_column_with_wide(store: Path) -> None:
    summary = run_main(["report", "r1", "--store", str(store), "--format", "md"]).out
    wide = run_main(["report", "r1", "--store", str(store), "--format", "md", "--wide"]).out
    assert "channel 50%" in summary and "non-zero / params" not in summary
    assert "non-zero / params" in wide and "prune.channel macs_removed=0.5" in wide
    assert max(map(len, summary.splitlines())) <= 120 < max(map(len, wide.splitlines()))


def test_open_prints_the_page_and_starts_no_browser_without_a_display(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url, *args, **kwargs: opened.append(url) or True)
    result = run_main(["report", "r1", "--store", str(store), "--format", "md", "--open"])
    assert result.code == 0, result.err
    page = store.parent / "runs" / "r1" / "report.html"
    assert page.is_file(), "--open writes the HTML report it opens"
    assert f"open: {page.resolve().as_uri()}" in result.out and "no display here" in result.out
    assert opened == []
    monkeypatch.setenv("DISPLAY", ":0")
    assert run_main(["report", "r1", "--store", str(store), "--open"]).code == 0
    assert opened == [page.resolve().as_uri()]
