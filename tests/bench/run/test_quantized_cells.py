"""Quantizers through the whole pipeline: real encodings in the record, the engine that ran, honest labels."""

from __future__ import annotations

import re

import pytest

from bench.records import Macs, ModelRecord, Sizes
from bench.store.database import read_store
from tests.bench.conftest import run_main, tiny_run_args, write_fast_toml

COMPRESSORS = [
    "none", "quant.int8", "quant.bits:bits=4", "quant.cluster:bits=2", "quant.binary", "arch.dsconv",
    "lowrank.svd:rank_ratio=0.5", "chain:stages=prune.unstructured(sparsity=0.8;scope=layer)+quant.bits(bits=4)",
]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, ModelRecord], str]:
    """The records by compressor, and the Markdown report of the run."""
    directory = tmp_path_factory.mktemp("quantized")
    store = directory / "results" / "bench.sqlite"
    result = run_main(tiny_run_args(store, write_fast_toml(directory), compressors=COMPRESSORS))
    assert result.code == 0, result.err
    with read_store(store) as opened:
        run_id = opened.run().run_id
        found = opened.records(run_id)
    assert all(r.ok and isinstance(r, ModelRecord) and r.sizes for r in found), [r.error for r in found]
    by_compressor = {r.compressor: r for r in found if isinstance(r, ModelRecord)}
    return by_compressor, (store.parent / "runs" / run_id / "report.md").read_text()


@pytest.fixture(scope="module")
def records(run: tuple[dict[str, ModelRecord], str]) -> dict[str, ModelRecord]:
    return run[0]


def _sizes(record: ModelRecord) -> Sizes:
    assert record.sizes is not None
    return record.sizes


def _macs(record: ModelRecord) -> Macs:
    assert record.macs is not None
    return record.macs


def test_report_sets_the_separable_swap_against_its_formula_and_lists_chain_stages(
    run: tuple[dict[str, ModelRecord], str],
) -> None:
    report = run[1]
    assert re.search(
        r"arch\.dsconv.*replaced convs: \d+; their params x0\.\d+ .* against 1/O \+ 1/K\^2 = 0\.\d+", report
    )
    assert re.search(r"chain .*after stage 1 \(prune\.unstructured\).*after stage 2 \(quant\.bits\): .*packed", report)


def test_int8_cells_run_int8_kernels_on_the_named_engine_and_store_int8(records: dict[str, ModelRecord]) -> None:
    int8 = records["quant.int8"]
    assert int8.quantized_engine in ("x86", "fbgemm", "qnnpack") and int8.executed_as is not None
    assert int8.quantized_engine in int8.executed_as and "int8" in int8.executed_as
    assert (_sizes(int8).stored_bytes or 0) < (_sizes(records["none"]).stored_bytes or 0) / 3
    assert int8.finetune_steps == 0 and int8.recovery == {}


def test_simulated_quantizers_say_so_and_carry_real_encoded_sizes(records: dict[str, ModelRecord]) -> None:
    fp32 = _sizes(records["none"]).dense_bytes
    container = 8 * 1024  # torch.save's archive, biases and per-channel tables: fixed, not per weight
    packed = {}
    for name, bits in (("quant.bits", 4), ("quant.cluster", 2), ("quant.binary", 1)):
        record, sizes = records[name], _sizes(records[name])
        assert record.executed_as is not None and record.executed_as.startswith("simulated")
        assert sizes.packed_bytes is not None and sizes.huffman_bytes is not None
        assert sizes.packed_bytes < fp32 * bits / 32 + container, name
        assert sizes.huffman_bytes > 0
        packed[name] = sizes.packed_bytes
    assert packed["quant.binary"] < packed["quant.bits"]


def test_recovered_quantized_weights_are_quantized_again(records: dict[str, ModelRecord]) -> None:
    record = records["quant.bits"]
    assert record.finetune_steps > 0
    # the record's codes describe the evaluated model: its encodings are the 4-bit ones, not a drifted fp32 model
    assert (_sizes(record).packed_bytes or 0) < _sizes(record).dense_bytes / 5


def test_architecture_swaps_report_fewer_macs_and_params(records: dict[str, ModelRecord]) -> None:
    baseline = records["none"]
    for name in ("arch.dsconv", "lowrank.svd"):
        record = records[name]
        assert _macs(record).dense < _macs(baseline).dense, name
        assert _sizes(record).params_total < _sizes(baseline).params_total, name
        assert _macs(record).theoretical_speedup > 1.0
        assert record.executed_as is not None and record.executed_as.startswith("dense")


def test_every_record_has_the_artifact_it_timed(records: dict[str, ModelRecord]) -> None:
    for record in records.values():
        assert record.artifact_bytes is not None and record.artifact_bytes > 0
        assert (_sizes(record).stored_bytes or 0) > 0


def test_a_chain_records_the_size_after_each_stage(records: dict[str, ModelRecord]) -> None:
    chain = records["chain"]
    pruned, quantized = chain.stage_sizes
    assert pruned.params_nonzero < 0.25 * _sizes(records["none"]).params_nonzero
    assert pruned.packed_bytes is None and quantized.packed_bytes is not None
    assert quantized.packed_bytes < pruned.dense_bytes / 5
    # zeros survive 4-bit affine quantization, so the final model is as sparse as the pruned one
    assert _sizes(chain).params_nonzero <= pruned.params_nonzero
    assert (_sizes(chain).huffman_bytes or 0) < quantized.packed_bytes
