"""Bit packing, canonical Huffman coding and the coded-state sizes of quantized models."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from torch import nn

from bench.measure.encodings import (
    HuffmanCoded,
    coded_sizes,
    decode_coded_state,
    encode_coded_state,
    huffman_decode,
    huffman_encode,
    pack_bits,
    unpack_bits,
)
from bench.measure.size import dense_bytes
from bench.models.registry import resolve_model
from compressors import Compressed, get


def _random_codes(count: int, bits: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 2**bits, (count,), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def _skewed(count: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randint(0, 16, (count,), generator=generator)
    return torch.where(torch.rand(count, generator=generator) < 0.9, 7, noise).to(torch.uint8)


def _mnist_cnn() -> nn.Module:
    return resolve_model("mnist_cnn").build()


def _compress(name: str, **params: object) -> Compressed:
    return get(name)(**params).apply(_mnist_cnn(), torch.zeros(1, 1, 28, 28))


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach() for name, tensor in model.state_dict().items()}


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("count", [0, 1, 7, 8, 13, 1001, (1 << 20) + 3])
def test_pack_round_trip_and_length(bits: int, count: int) -> None:
    codes = _random_codes(count, bits, seed=bits)
    packed = pack_bits(codes, bits)
    assert len(packed) == math.ceil(count * bits / 8)
    assert torch.equal(unpack_bits(packed, bits, count), codes)


def test_pack_bit_order_is_little_endian() -> None:
    # Codes 1, 2, 3 at 3 bits, each LSB first: stream 100 010 11|0; stream bit j is bit j % 8 of byte j // 8.
    assert pack_bits(torch.tensor([1, 2, 3]), 3) == bytes([0b11010001, 0b0])


def test_pack_accepts_any_integer_dtype_and_shape() -> None:
    codes = torch.tensor([[3, 0], [1, 2]], dtype=torch.int64)
    assert torch.equal(unpack_bits(pack_bits(codes, 2), 2, 4), codes.flatten().to(torch.uint8))


@pytest.mark.parametrize(
    ("codes", "bits", "message"),
    [
        (torch.tensor([4]), 2, r"^codes must lie in \[0, 4\) for 2 bits, got \[4, 4\]$"),
        (torch.tensor([-1, 0]), 2, r"^codes must lie in \[0, 4\) for 2 bits, got \[-1, 0\]$"),
        (torch.tensor([0.0]), 2, r"^codes must be an integer tensor, got torch.float32$"),
        (torch.tensor([0]), 9, r"^bits must be an integer in \[1, 8\], got 9$"),
        (torch.tensor([0]), 0, r"^bits must be an integer in \[1, 8\], got 0$"),
    ],
)
def test_pack_rejects_bad_input(codes: torch.Tensor, bits: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pack_bits(codes, bits)


def test_unpack_rejects_a_wrong_length() -> None:
    with pytest.raises(ValueError, match=r"^10 codes of 3 bits take 4 bytes, got 3$"):
        unpack_bits(b"\x00\x00\x00", 3, 10)


@pytest.mark.parametrize(
    "codes", [_random_codes(5000, 8), _skewed(100_003), _random_codes(17, 2)], ids=["uniform8", "skewed", "short"]
)
def test_huffman_round_trip_exact(codes: torch.Tensor) -> None:
    coded = huffman_encode(codes)
    assert torch.equal(huffman_decode(coded), codes)
    assert len(coded.payload) == math.ceil(coded.bit_count / 8)


def test_huffman_beats_fixed_length_on_skewed_data() -> None:
    codes = _skewed(100_000)
    coded = huffman_encode(codes)
    assert coded.bit_count < 0.5 * codes.numel() * 4
    assert len(coded.payload) < len(pack_bits(codes, 4))
    assert coded.lengths[7] == 1


def test_huffman_lengths_are_canonical_and_complete() -> None:
    codes = _skewed(50_000)
    coded = huffman_encode(codes)
    lengths = [int(length) for length in coded.lengths if length > 0]
    assert sum(Fraction(1, 2**length) for length in lengths) == 1
    counts = torch.bincount(codes.long(), minlength=coded.lengths.numel())
    assert coded.bit_count == int((counts * coded.lengths.long()).sum())
    assert torch.equal(coded.lengths > 0, counts > 0)


def test_huffman_is_optimal_on_a_known_distribution() -> None:
    # Frequencies 8:4:2:1:1 give lengths 1, 2, 3, 4, 4 (the textbook dyadic case).
    codes = torch.tensor([0] * 8 + [1] * 4 + [2] * 2 + [3] + [4], dtype=torch.uint8)
    coded = huffman_encode(codes)
    assert coded.lengths.tolist() == [1, 2, 3, 4, 4]
    # Canonical codes 0, 10, 110, 1110, 1111, each written MSB first: 0|10|1111|0 for [0, 1, 4, 0], packed
    # LSB first into one byte.
    assert huffman_decode(HuffmanCoded(coded.lengths, bytes([0b01111010]), 8)).tolist() == [0, 1, 4, 0]
    assert huffman_encode(torch.tensor([1, 4], dtype=torch.uint8)).lengths.tolist() == [0, 1, 0, 0, 1]


def test_huffman_single_symbol_stream() -> None:
    codes = torch.full((1000,), 5, dtype=torch.uint8)
    coded = huffman_encode(codes)
    assert coded.lengths.tolist() == [0, 0, 0, 0, 0, 1]
    assert coded.bit_count == 1000
    assert torch.equal(huffman_decode(coded), codes)


def test_huffman_empty_stream() -> None:
    coded = huffman_encode(torch.zeros(0, dtype=torch.uint8))
    assert coded.bit_count == 0 and coded.payload == b""
    assert huffman_decode(coded).numel() == 0


def test_huffman_decodes_the_mnist_fc_codes() -> None:
    codes = _compress("quant.bits", bits=4).codes["7.weight"].codes
    assert codes.numel() == 401_408
    coded = huffman_encode(codes)
    assert torch.equal(huffman_decode(coded), codes.flatten())
    assert coded.bit_count <= codes.numel() * 4


def test_coded_sizes_of_a_4_bit_mnist_cnn() -> None:
    compressed = _compress("quant.bits", bits=4)
    state = _state(compressed.model)
    dense = len(dense_bytes(state))
    sizes = coded_sizes(state, compressed.codes)
    assert dense / 10 < sizes["size_packed_bytes"] < dense / 5
    assert sizes["size_huffman_bytes"] < dense / 5
    assert sizes["size_packed_bytes"] == len(encode_coded_state(state, compressed.codes, "packed"))
    assert sizes["size_huffman_bytes"] == len(encode_coded_state(state, compressed.codes, "huffman"))


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("quant.bits", {"bits": 4}),
        ("quant.bits", {"bits": 3, "scheme": "symmetric"}),
        ("quant.binary", {}),
        ("quant.cluster", {"bits": 5}),
    ],
)
@pytest.mark.parametrize("encoding", ["packed", "huffman"])
def test_coded_state_decodes_to_the_model_bit_for_bit(name: str, params: dict[str, object], encoding: str) -> None:
    compressed = _compress(name, **params)
    state = _state(compressed.model)
    decoded = decode_coded_state(encode_coded_state(state, compressed.codes, encoding))
    assert decoded.keys() == state.keys()
    for key, tensor in state.items():
        assert decoded[key].dtype == tensor.dtype and decoded[key].shape == tensor.shape, key
        assert torch.equal(decoded[key].view(torch.int32), tensor.view(torch.int32)), key


def _packed_size(compressed: Compressed) -> int:
    return coded_sizes(_state(compressed.model), compressed.codes)["size_packed_bytes"]


def test_fewer_bits_store_fewer_bytes() -> None:
    sizes = {bits: _packed_size(_compress("quant.bits", bits=bits)) for bits in (2, 4, 8)}
    assert _packed_size(_compress("quant.binary")) < sizes[2] < sizes[4] < sizes[8]


def test_encode_rejects_mismatched_codes() -> None:
    compressed = _compress("quant.bits", bits=4)
    state = _state(compressed.model)
    with pytest.raises(ValueError, match=r"^codes name parameters missing from the state: 7\.weight$"):
        encode_coded_state({k: v for k, v in state.items() if k != "7.weight"}, compressed.codes, "packed")
    with pytest.raises(ValueError, match=r"^encoding must be one of packed, huffman; got 'gzip'$"):
        encode_coded_state(state, compressed.codes, "gzip")
    with pytest.raises(ValueError, match=r"^codes of 0\.weight have shape \(32, 1, 3, 3\), the state \(9, 32\)$"):
        encode_coded_state({**state, "0.weight": torch.zeros(9, 32)}, compressed.codes, "packed")
