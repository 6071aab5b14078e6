"""ci/data-branch.sh against a real git remote: the perf job's kept runs survive, concurrent pushes both land."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "ci" / "data-branch.sh"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _script(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True)


def _clone(origin: Path, where: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(origin), str(where)], check=True)
    _git(where, "config", "user.email", "ci@example.invalid")
    _git(where, "config", "user.name", "ci")
    return where


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    seed = _clone(bare, tmp_path / "seed")
    (seed / "README.md").write_text("code\n")
    _git(seed, "add", "README.md")
    _git(seed, "commit", "-qm", "code")
    _git(seed, "push", "-q", "origin", "main")
    return bare


def test_a_first_run_starts_the_branch_and_a_later_job_reads_it(origin: Path, tmp_path: Path) -> None:
    first = _clone(origin, tmp_path / "first")
    fetched = _script(first, "fetch", "data")
    assert fetched.returncode == 0 and "starts empty" in fetched.stdout
    assert [p.name for p in (first / "data").iterdir()] == [".git"]
    (first / "data" / "cpu").mkdir()
    (first / "data" / "cpu" / "baseline.sqlite").write_bytes(b"run 1")
    (first / "data" / "cpu" / "artifacts").mkdir()
    (first / "data" / "cpu" / "artifacts" / "ab12.pt").write_bytes(b"too large for git: the workflow caches it")
    published = _script(first, "publish", "data", "cpu run of abc")
    assert published.returncode == 0, published.stderr
    tree = _git(origin, "ls-tree", "-r", "--name-only", "perf-data").splitlines()
    assert "cpu/baseline.sqlite" in tree and not any("artifacts" in path for path in tree)
    assert "README.md" not in _git(origin, "ls-tree", "-r", "--name-only", "perf-data")  # an orphan branch

    later = _clone(origin, tmp_path / "later")
    assert _script(later, "fetch", "data").returncode == 0
    assert (later / "data" / "cpu" / "baseline.sqlite").read_bytes() == b"run 1"
    assert _script(later, "publish", "data", "nothing new").stdout.startswith("nothing to keep")


def test_two_jobs_publishing_at_once_both_land(origin: Path, tmp_path: Path) -> None:
    seed = _clone(origin, tmp_path / "seed2")
    _script(seed, "fetch", "data")
    (seed / "data" / "start").write_text("0")
    assert _script(seed, "publish", "data", "start").returncode == 0
    gpu, cpu = _clone(origin, tmp_path / "gpu"), _clone(origin, tmp_path / "cpu")
    for clone, kind in ((gpu, "gpu"), (cpu, "cpu")):
        assert _script(clone, "fetch", "data").returncode == 0
        (clone / "data" / kind).mkdir()
        (clone / "data" / kind / "baseline.sqlite").write_bytes(kind.encode())
    assert _script(gpu, "publish", "data", "gpu run").returncode == 0
    late = _script(cpu, "publish", "data", "cpu run")  # its first push is refused, then it rebases onto the gpu run
    assert late.returncode == 0, late.stderr
    files = _git(origin, "ls-tree", "-r", "--name-only", "perf-data").split()
    assert {"start", "gpu/baseline.sqlite", "cpu/baseline.sqlite"} <= set(files)


def test_an_unknown_command_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = _script(tmp_path, "push", "data")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "fetch, publish" in done.stderr
