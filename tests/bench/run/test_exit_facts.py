"""Early exit on the host: where inputs leave, the expected MACs they make, the stream shipped to the worker, the
branch the artifact must keep, and the latency distribution a record keeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench.engines import EngineLimit, Exported
from bench.engines.onnx_export import export_onnx
from bench.models.data import Split
from bench.records import SCHEMA_VERSION, StreamLatency, load_record, record_json
from bench.run.exit_facts import STREAM_INPUTS, check_branches, exit_facts, stream_file, stream_inputs
from compressors.early_exit import EarlyExit
from tests.bench.record_factory import model_record
from tests.compressors.conftest import sure_of_bright_inputs, tiny_exit_model

# The tiny model's MACs by hand (batch 1, a 1x4x4 input): conv 1->2 (1x1) over 4x4 = 32; linear 8->3 = 24; the
# head after the pool (2x2x2 = 8 features): linear 8->128 = 1024 and 128->3 = 384.
CONV, LINEAR, HEAD = 32, 24, 1024 + 384
EXIT_MACS = (CONV + HEAD, CONV + HEAD + LINEAR)


def _split(bright: int, dark: int) -> Split:
    images = torch.cat([torch.full((bright, 1, 4, 4), 10.0), torch.zeros(dark, 1, 4, 4)])
    return Split(x=images, y=torch.zeros(bright + dark, dtype=torch.long))


def _facts(bright: int, dark: int):
    config = EarlyExit(exits="1", threshold=0.9)
    example = torch.zeros(1, 1, 4, 4)
    net = sure_of_bright_inputs(config.apply(tiny_exit_model(), example).model)
    executable = config.finalize(net).model
    return exit_facts(net, executable, _split(bright, dark), example, baseline_macs=CONV + LINEAR)


def test_expected_macs_are_the_hand_computed_sum_over_exits() -> None:
    facts = _facts(bright=1, dark=3)
    assert facts.exit_macs == EXIT_MACS
    assert facts.shares == (0.25, 0.75)
    assert facts.expected_macs == pytest.approx(0.25 * EXIT_MACS[0] + 0.75 * EXIT_MACS[1])
    macs = facts.macs(batch=1)
    assert (macs.dense, macs.effective, macs.baseline) == (EXIT_MACS[1], round(facts.expected_macs), CONV + LINEAR)
    # The record's theoretical speedup is the baseline's MACs over the expected ones, as for every compressor.
    assert macs.theoretical_speedup == pytest.approx((CONV + LINEAR) / round(facts.expected_macs))


@pytest.mark.parametrize(("bright", "dark"), [(4, 0), (0, 4), (3, 5), (1, 1)])
def test_exit_shares_sum_to_one(bright: int, dark: int) -> None:
    facts = _facts(bright, dark)
    assert sum(facts.shares) == pytest.approx(1.0)
    assert facts.shares[0] == pytest.approx(bright / (bright + dark))
    info = json.loads(json.dumps(facts.info()))
    assert sum(info["exit_shares"]) == pytest.approx(1.0) and sum(info["stream"]["exit_shares"]) == pytest.approx(1.0)
    assert info["stream"]["exits"].count(0) == bright  # a test split smaller than the stream is streamed whole


def test_the_stream_is_a_seeded_draw_of_distinct_real_test_inputs(tmp_path: Path) -> None:
    images = torch.arange(1000, dtype=torch.float32).reshape(1000, 1, 1, 1)
    test = Split(x=images, y=torch.zeros(1000, dtype=torch.long))
    drawn = stream_inputs(test)
    assert drawn.shape == (STREAM_INPUTS, 1, 1, 1)
    values = drawn.flatten().tolist()
    assert len(set(values)) == STREAM_INPUTS and values != sorted(values)
    assert torch.equal(drawn, stream_inputs(test)) and not torch.equal(drawn, stream_inputs(test, seed=1))
    path = stream_file("m", test, tmp_path)
    assert torch.equal(torch.load(path, weights_only=True), drawn)
    assert stream_file("m", test, tmp_path) == path


def test_an_artifact_without_its_branch_is_an_engine_limit(tmp_path: Path) -> None:
    config = EarlyExit(exits="1", threshold=0.9)
    net = config.apply(tiny_exit_model(), torch.zeros(1, 1, 4, 4)).model
    scripted, traced = tmp_path / "scripted.pt", tmp_path / "traced.pt"
    config.finalize(net).model.save(str(scripted))
    with torch.no_grad():
        torch.jit.trace(net, torch.zeros(1, 1, 4, 4)).save(str(traced))
    check_branches(Exported(scripted, "x", "", None, 1), "torchscript")
    with pytest.raises(EngineLimit, match="the exported graph has no branch"):
        check_branches(Exported(traced, "x", "", None, 1), "torchscript")


def _worker_answer(baseline: list[float], candidate: list[float]) -> dict[str, object]:
    return {"baseline_inputs_s": baseline, "candidate_inputs_s": candidate}


def test_the_latency_distribution_of_a_stream() -> None:
    baseline = [1e-3] * 100
    candidate = [2.5e-4] * 90 + [1.1e-3] * 10  # most inputs leave early; the rest pay the full path and the heads
    latency = StreamLatency.from_worker(_worker_answer(baseline, candidate))
    assert latency.inputs == 100 and latency.samples_s == tuple(candidate)
    assert latency.candidate.p50_s == pytest.approx(2.5e-4) and latency.candidate.p99_s == pytest.approx(1.1e-3)
    assert latency.speedup_mean == pytest.approx(1e-3 / (0.9 * 2.5e-4 + 0.1 * 1.1e-3))
    assert latency.speedup_mean_ci_low <= latency.speedup_mean <= latency.speedup_mean_ci_high
    assert latency.speedup_p99 == pytest.approx(1 / 1.1) and latency.speedup_p99_ci_high < 1.0


def test_a_record_with_a_latency_distribution_round_trips_and_older_ones_read_none() -> None:
    latency = StreamLatency.from_worker(_worker_answer([1e-3, 2e-3, 1.5e-3], [5e-4, 2.1e-3, 6e-4]))
    record = model_record("dynamic.early_exit", {"exits": "1", "rule": "confidence", "threshold": 0.9}, top1=0.99,
                          latency=latency)  # fmt: skip
    stored = json.loads(json.dumps(record_json(record)))
    assert load_record(stored) == record
    older = {key: value for key, value in stored.items() if key != "latency"}
    assert older["schema_version"] == SCHEMA_VERSION
    assert load_record(older).latency is None
    with pytest.raises(ValueError, match="latency has 3 inputs but 2 samples"):
        StreamLatency(**{**vars(latency), "samples_s": latency.samples_s[:2]})


def test_onnx_runtime_keeps_the_branch_and_each_samples_path(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    config = EarlyExit(exits="1", threshold=0.9)
    net = sure_of_bright_inputs(config.apply(tiny_exit_model(), torch.zeros(1, 1, 4, 4)).model)
    executable = config.finalize(net).model
    path = export_onnx(executable, torch.zeros(1, 1, 4, 4), tmp_path / "exit.onnx")
    check_branches(Exported(path, "x", "", None, 1), "onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    bright, dark = torch.full((1, 1, 4, 4), 10.0), torch.zeros(1, 1, 4, 4)
    with torch.no_grad():
        head_logits = net.heads[0](net.segments[0](bright))
        for batch in ([bright], [dark], [bright, dark, bright], [dark, dark], [bright, bright]):
            x = torch.cat(batch)
            (logits,) = session.run(None, {"input": x.numpy()})
            expected, _exits = executable.decide(x)
            torch.testing.assert_close(torch.from_numpy(logits), expected)
        (alone,) = session.run(None, {"input": bright.numpy()})
    torch.testing.assert_close(torch.from_numpy(alone), head_logits)
