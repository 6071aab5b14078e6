"""A third-party library's warnings reach the user as one line each in the suite's words, never as the library's own
text in the progress display, and the filters in force still decide which warnings count.

The real run registers a compressor the suite does not ship, as a user's plugin would (see
`tests/bench/fake_compressor.py`), whose compress step calls a small library that warns in many lines, as
torch-pruning does on torchvision's swin_t.
"""

from __future__ import annotations

import copy
import importlib
import io
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch

from bench.config.run_config import load_config
from bench.labels import SCREEN_WIDTH as WIDTH
from bench.run.host_warnings import HostWarnings, _library, warning_line
from bench.run.matrix import expand
from bench.run.runner import run_matrix
from bench.store.database import read_store
from compressors import Compressed, CompressorConfig, Presentation, register, registry
from tests.bench.conftest import write_fast_toml

if TYPE_CHECKING:
    from torch import nn

NAME = "test.chatty"
LIBRARY = "chatty_lib"
FIRST = "Maximum recursive depth reached!"
LATER = "Unwrapped parameters detected: ['features.1.0.attn.relative_position_bias_table']"
# A library module of its own, imported from the test's folder: its warnings are raised from its own file.
SOURCE = f"""
import warnings


def prune(model):
    for _ in range(4):
        warnings.warn({FIRST!r} + "\\n" + {LATER!r} + "\\n  Torch-Pruning will prune the last dimension.")
    return model
"""


@dataclass(frozen=True)
class Chatty(CompressorConfig):
    """Scales every parameter by `scale`, after a library call that warns four times, in three lines each time.

    Registered by the `chatty` fixture only, into a copy of the registry, so no other test sees it.
    """

    presentation = Presentation(short="chatty", family="chatty", headline=("scale",))

    scale: float = 1.0

    def apply(
        self, model: nn.Module, example_input: torch.Tensor, calibration: Sequence[torch.Tensor] = ()
    ) -> Compressed:
        scaled = copy.deepcopy(importlib.import_module(LIBRARY).prune(model))
        with torch.no_grad():
            for parameter in scaled.parameters():
                parameter.mul_(self.scale)
        return Compressed(model=scaled, masks={}, info={"scale": self.scale})


@pytest.fixture
def chatty(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`test.chatty` registered in a copy of the registry, and its library importable from the test's folder."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register(NAME)(Chatty)
    library = tmp_path / "library"
    library.mkdir()
    (library / f"{LIBRARY}.py").write_text(SOURCE)
    monkeypatch.syspath_prepend(str(library))
    monkeypatch.delitem(sys.modules, LIBRARY, raising=False)


def _config(tmp_path: Path, params: dict[str, Any]) -> Any:
    return load_config(
        write_fast_toml(tmp_path),
        {
            "models": ["digits_cnn"],
            "compressors": {NAME: params},
            "engines": ["torchscript"],
            "finetune_steps": 0,
            "timing": {"budget_s": 0.2},
            "layers": {"models": []},
            "store": tmp_path / "bench.sqlite",
        },
    )


def test_a_library_warning_in_many_lines_is_one_line_in_the_suites_words(chatty: None, tmp_path: Path) -> None:
    config = _config(tmp_path, {"scale": [1.0, 0.5]})
    assert len({cell.id for cell in expand(config)}) == 2  # two compressed models: the library warns in each
    output = io.StringIO()
    outcome = run_matrix(config, output)

    assert outcome.counts == {"ok": 2} and outcome.run_id is not None
    with read_store(config.store) as store:
        assert [record.status for record in store.records(outcome.run_id)] == ["ok", "ok"]
    lines = output.getvalue().splitlines()
    (told,) = [line for line in lines if LIBRARY in line]  # one line for the run, though both groups warned
    # What the host was doing, who warned, the first line of the message cut to the display's width, the count.
    assert told.startswith(f"warning: {NAME} on digits_cnn: {LIBRARY} warned (UserWarning): Maximum recursive")
    assert told.endswith("… (once; 3 more like it)") and len(told) == WIDTH
    assert not [line for line in lines if "Unwrapped" in line or "Torch-Pruning" in line or "UserWarning:" in line]
    # The full text is kept for the run's caller, once for the run, with how many times it came.
    (text,) = [text for text in outcome.warnings if FIRST in text]
    assert text.startswith(f"{NAME} on digits_cnn: 8 times: ")
    assert LATER in text and "Torch-Pruning will prune the last dimension." in text and f"{LIBRARY}.py" in text


def test_a_long_first_line_is_cut_to_the_width_and_keeps_its_count() -> None:
    line = warning_line("prune.channel on swin_t", UserWarning, "x" * 300, "torch-pruning", 3)
    assert len(line) == WIDTH
    assert line.startswith("warning: prune.channel on swin_t: torch-pruning warned (UserWarning): xxx")
    assert line.endswith("x… (once; 3 more like it)")
    assert warning_line("m", RuntimeWarning, "short", None, 0) == "warning: m: RuntimeWarning: short"


def test_the_library_is_named_by_its_distribution() -> None:
    assert _library(torch.nn.modules.module.__file__) == "torch"
    torch_pruning = pytest.importorskip("torch_pruning")
    assert _library(torch_pruning.__file__) == "torch-pruning"
    assert _library("<frozen importlib._bootstrap>") is None


def _warn(times: int, category: type[Warning] = UserWarning, text: str = "chatty\nmore") -> None:
    for _ in range(times):
        warnings.warn(text, category, stacklevel=1)


def test_each_kind_is_told_once_a_run_and_the_filters_come_back() -> None:
    told: list[str] = []
    host = HostWarnings(told.append)
    before = list(warnings.filters)
    with host.watching("a on m"):
        _warn(2)
        _warn(1, RuntimeWarning)
    with host.watching("b on m"):
        _warn(5)
    assert told == [
        "warning: a on m: tests warned (UserWarning): chatty (once; 1 more like it)",
        "warning: a on m: tests warned (RuntimeWarning): chatty",
    ]
    assert [text.split(": ", 2)[:2] for text in host.texts()] == [["a on m", "7 times"], ["a on m", "once"]]
    assert warnings.filters == before
    with pytest.warns(UserWarning, match="chatty"):  # outside the block, warnings are what they were
        _warn(1)


@pytest.mark.filterwarnings("ignore:chatty:UserWarning")
def test_a_warning_the_filters_ignore_is_not_told() -> None:
    told: list[str] = []
    with HostWarnings(told.append).watching("a on m"):
        _warn(3)
        _warn(1, RuntimeWarning)
    assert told == ["warning: a on m: tests warned (RuntimeWarning): chatty"]


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_a_warning_the_filters_make_an_error_still_raises() -> None:
    told: list[str] = []
    with pytest.raises(RuntimeWarning, match="chatty"), HostWarnings(told.append).watching("a on m"):
        _warn(1)
        _warn(1, RuntimeWarning)
    assert told == ["warning: a on m: tests warned (UserWarning): chatty"]


def test_the_run_verb_keeps_the_whole_texts_beside_the_report(
    chatty: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.cli.run import measure_matrix

    overrides = {
        "models": ["digits_cnn"], "compressors": {NAME: {"scale": [1.0]}}, "engines": ["torchscript"],
        "finetune_steps": 0, "timing": {"budget_s": 0.2}, "layers": {"models": []}, "store": tmp_path / "bench.sqlite",
    }  # fmt: skip
    assert measure_matrix(write_fast_toml(tmp_path), overrides) == 0
    said = capsys.readouterr().out
    (line,) = [line for line in said.splitlines() if line.startswith("warnings: ")]
    kept = Path(line.rsplit(": ", 1)[1])
    assert line.startswith("warnings: 1 kind(s) from the host's work, in full: ") and kept.name == "warnings.txt"
    assert FIRST in kept.read_text() and LATER in kept.read_text() and kept.parent.name in said


@dataclass(frozen=True)
class ChattyCheck(Chatty):
    """`Chatty`, whose check of each model (made while the matrix is checked, before the run) calls the library."""

    def check(self, model: nn.Module) -> None:
        importlib.import_module(LIBRARY).prune(model)


def test_a_warning_while_the_matrix_is_checked_is_one_line_too(
    chatty: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.cli.run import measure_matrix

    register("test.chatty_check")(ChattyCheck)
    overrides = {
        "models": ["digits_cnn"], "compressors": {"test.chatty_check": {"scale": [1.0]}}, "engines": ["torchscript"],
        "finetune_steps": 0, "timing": {"budget_s": 0.2}, "layers": {"models": []}, "store": tmp_path / "bench.sqlite",
    }  # fmt: skip
    assert measure_matrix(write_fast_toml(tmp_path), overrides) == 0
    said = capsys.readouterr()
    (told,) = [line for line in said.err.splitlines() if line.startswith("warning: checking the matrix: ")]
    assert told.startswith(f"warning: checking the matrix: {LIBRARY} warned (UserWarning): {FIRST}")
    assert LATER not in said.err and "UserWarning:" not in said.err  # no raw text, whatever part of the run
    kept = Path(next(line for line in said.out.splitlines() if line.startswith("warnings: ")).rsplit(": ", 1)[1])
    assert kept.read_text().startswith("checking the matrix: ")
