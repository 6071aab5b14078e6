"""Measurements other than latency: size (real encodings), MACs, accuracy. Latency belongs to `targets`."""

from bench.measure.accuracy import top1
from bench.measure.flops import macs_report
from bench.measure.size import decode_csr_state, dense_bytes, encode_csr_state, size_report

__all__ = ["top1", "macs_report", "size_report", "dense_bytes", "encode_csr_state", "decode_csr_state"]
