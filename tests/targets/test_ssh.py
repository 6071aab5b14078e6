"""The SSH target against a real OpenSSH server on 127.0.0.1: shipping, timing, cleanup and every failure."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from targets import SshTarget, TargetError, create, spec_from_table
from targets._zipapp import worker_zipapp
from targets.ssh import MIN_DEVICE_TORCH
from tests.sshd import LocalSshd, free_port

MakePair = Callable[..., dict[str, Any]]


def _target(server: LocalSshd, workdir: Path, **settings: Any) -> SshTarget:
    table = server.target_table(
        **{"python": sys.executable, "workdir": str(workdir), "connect_timeout_s": 5, **settings}
    )
    target = create(spec_from_table("ssh-test", table))
    assert isinstance(target, SshTarget)
    return target


@pytest.fixture
def ssh_target(local_sshd: LocalSshd, tmp_path: Path) -> Iterator[SshTarget]:
    with _target(local_sshd, tmp_path / "remote") as target:
        yield target


def _session_files(target: SshTarget) -> set[str]:
    return set(os.listdir(target.session_dir))


def test_machine_info_comes_from_the_device_through_ssh(ssh_target: SshTarget) -> None:
    assert ssh_target.available() == (True, "")
    machine = ssh_target.machine_info()
    assert machine["arch"] and machine["torch"] and "thermal" in machine
    # The worker zipapp was copied into this session's own folder on the device, named by its digest.
    assert _session_files(ssh_target) == {worker_zipapp().name}
    assert ssh_target.pid is not None  # the local ssh client that carries the worker's stdin/stdout


def test_pairs_are_shipped_timed_and_candidates_removed(
    ssh_target: SshTarget, make_pair: MakePair, artifacts: dict[str, str]
) -> None:
    slower, faster = ssh_target.time_pairs([make_pair("fast", "slow"), make_pair("slow", "fast")], threads=1)
    assert slower["summary"]["speedup_median"] < 0.5
    assert faster["summary"]["speedup_median"] > 2.0
    assert slower["rounds"] >= 4 and slower["thermal_after"] is not None
    # Both files were baselines of one pair, so both stay for the next cells; nothing else is left behind.
    files = _session_files(ssh_target)
    assert worker_zipapp().name in files and len(files) == 3 and not any(name.endswith(".part") for name in files)
    (result,) = ssh_target.time_pairs([make_pair("fast", "fast_copy")], threads=1)
    assert result["rounds"] >= 4
    # fast_copy is byte-identical to fast: shipped under the same content name, so it is the baseline and stays.
    assert _session_files(ssh_target) == files


def test_close_removes_the_session_folder(local_sshd: LocalSshd, tmp_path: Path, make_pair: MakePair) -> None:
    target = _target(local_sshd, tmp_path / "remote")
    target.time_pairs([make_pair("fast", "slow")], threads=1)
    session = Path(target.session_dir)
    assert session.is_dir()
    target.close()
    assert not session.exists()
    assert target.pid is None


def test_unreachable_host_fails_fast_with_ssh_reason(local_sshd: LocalSshd, tmp_path: Path) -> None:
    table = {"kind": "ssh", "host": "127.0.0.1", "port": free_port(), "connect_timeout_s": 5, "workdir": str(tmp_path)}
    target = create(spec_from_table("down", table))
    started = time.monotonic()
    with pytest.raises(
        TargetError, match=r"^down: ssh could not connect or log in \(127\.0\.0\.1\): .*(refused|closed)"
    ) as info:
        target.machine_info()
    assert time.monotonic() - started < 10
    assert "\n" not in str(info.value)
    target.close()


def test_authentication_failure_is_named(local_sshd: LocalSshd, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger_key"
    os.system(f"ssh-keygen -q -t ed25519 -N '' -f {stranger}")  # noqa: S605 - a fixed command on a tmp path
    known_hosts = local_sshd.directory / "known_hosts"
    table = {
        "kind": "ssh", "host": "127.0.0.1", "port": local_sshd.port, "user": local_sshd.user,
        "identity_file": str(stranger),
        "ssh_options": [f"UserKnownHostsFile={known_hosts}", "StrictHostKeyChecking=yes"], "workdir": str(tmp_path),
    }  # fmt: skip
    target = create(spec_from_table("ssh-test", table))
    with pytest.raises(TargetError, match=r"ssh could not connect or log in .*Permission denied"):
        target.machine_info()
    target.close()


def test_device_python_without_torch_is_named(local_sshd: LocalSshd, tmp_path: Path) -> None:
    bare = tmp_path / "bare-venv"
    assert os.system(f"{sys.executable} -m venv --without-pip {bare}") == 0  # noqa: S605
    target = _target(local_sshd, tmp_path / "remote", python=str(bare / "bin" / "python"))
    with pytest.raises(TargetError, match=r"cannot import torch; install it there"):
        target.machine_info()
    target.close()


def test_device_torch_older_than_the_artifacts_is_refused(ssh_target: SshTarget) -> None:
    minimum = ".".join(map(str, MIN_DEVICE_TORCH))
    with pytest.raises(
        TargetError, match=rf"torch 1\.13\.1 on bench-local is too old .* torch >= {minimum} is needed there"
    ):
        ssh_target._check_machine({"torch": "1.13.1"})
    ssh_target._check_machine({"torch": f"{minimum}.1+cpu"})


def _remote_worker(target: SshTarget) -> psutil.Process:
    """The worker process sshd started for ``target`` (its working directory is the session folder)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for process in psutil.process_iter(["cmdline", "cwd"]):
            if process.info["cwd"] == target.session_dir and worker_zipapp().name in (process.info["cmdline"] or []):
                return process
        time.sleep(0.05)
    raise AssertionError("remote worker process not found")


@pytest.mark.parametrize("victim", ["remote worker", "ssh connection"])
def test_crash_in_the_middle_of_a_cell_fails_it_and_the_next_cell_runs(
    ssh_target: SshTarget, make_pair: MakePair, victim: str
) -> None:
    ssh_target.machine_info()
    remote = _remote_worker(ssh_target)
    local_ssh = ssh_target.pid
    assert local_ssh is not None

    def kill_soon() -> None:
        # Once both artifacts are on the device the request is on its way: the kill lands mid-measurement.
        while len(_session_files(ssh_target)) < 3:
            time.sleep(0.05)
        time.sleep(1.0)
        if victim == "remote worker":
            remote.kill()
        else:
            os.kill(local_ssh, signal.SIGKILL)

    killer = threading.Thread(target=kill_soon)
    killer.start()
    with pytest.raises(
        TargetError,
        match=r"ssh-test worker (exited with code \d+|was killed by SIG\w+ \(signal \d+\)) while answering 'time'",
    ):
        ssh_target.time_pairs([make_pair("fast", "slow", budget_s=30.0, ci_rel=1e-9, max_rounds=400)], threads=1)
    killer.join()
    assert ssh_target.pid is None
    (result,) = ssh_target.time_pairs([make_pair("fast", "slow")], threads=1)
    assert result["summary"]["speedup_median"] < 0.5


def test_paths_are_quoted_for_the_remote_shell(local_sshd: LocalSshd, tmp_path: Path, make_pair: MakePair) -> None:
    proof = tmp_path / "injected"
    odd_workdir = tmp_path / "work dir 'quoted' $(touch injected) ; x"
    with _target(local_sshd, odd_workdir) as target:
        (result,) = target.time_pairs([make_pair("fast", "slow")], threads=1)
        assert result["rounds"] >= 4
        assert Path(target.session_dir).parent == odd_workdir
    evil = _target(local_sshd, tmp_path / "remote", python=f"python3; touch {proof}")
    with pytest.raises(TargetError):
        evil.machine_info()
    evil.close()
    assert not proof.exists() and not (Path.home() / "injected").exists()
