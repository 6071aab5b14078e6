"""Real storage of quantized weights: bit-packed codes and canonical Huffman-coded codes.

A compressor's `WeightCode`s say how each weight is stored; this module actually writes them out, so a k-bit
claim is measured as a k-bit stream and Huffman coding (Deep Compression's last stage) as the bytes it really
produces. Every size is the length of a `torch.save` serialization, like the other sizes, never a formula.
"""

from __future__ import annotations

import heapq
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench.measure.size import dense_bytes
from compressors.base import WeightCode
from compressors.quant_weights import decode_weight

__all__ = [
    "HuffmanCoded",
    "coded_sizes",
    "decode_coded_state",
    "encode_coded_state",
    "huffman_decode",
    "huffman_encode",
    "pack_bits",
    "unpack_bits",
]

# Codes per numpy pass: bounds the (codes x bits) scratch matrices on VGG-sized layers. A multiple of 8, so
# every chunk of a packed stream ends on a byte boundary.
_CHUNK = 1 << 20
_ENCODINGS = ("packed", "huffman")


def pack_bits(codes: torch.Tensor, bits: int) -> bytes:
    """Packs codes into a stream of `bits` bits each: ceil(n * bits / 8) bytes.

    The stream is little-endian throughout: code i occupies stream bits [i * bits, (i + 1) * bits), least
    significant bit first, and stream bit j is bit j % 8 (LSB = 0) of byte j // 8. The last byte is
    zero-padded.

    Args:
        codes: Integer tensor, any shape (read in row-major order), every value in [0, 2**bits).
        bits: Bits per code, 1 to 8.

    Returns:
        The packed bytes.

    Raises:
        ValueError: If `bits` is out of range, or a code does not fit in `bits` bits.
    """
    values = _symbols(codes, bits)
    if bits == 8:
        return values.tobytes()
    parts = []
    for start in range(0, values.size, _CHUNK):
        matrix = np.unpackbits(values[start : start + _CHUNK, None], axis=1, count=bits, bitorder="little")
        parts.append(np.packbits(matrix.ravel(), bitorder="little").tobytes())
    return b"".join(parts)


def unpack_bits(data: bytes, bits: int, count: int) -> torch.Tensor:
    """Inverse of `pack_bits`: the `count` codes back, as a flat uint8 tensor.

    Raises:
        ValueError: If `bits` is out of range or `data` is not exactly ceil(count * bits / 8) bytes.
    """
    _check_bits(bits)
    expected = math.ceil(count * bits / 8)
    if len(data) != expected:
        raise ValueError(f"{count} codes of {bits} bits take {expected} bytes, got {len(data)}")
    raw = np.frombuffer(data, dtype=np.uint8)
    if bits == 8:
        return torch.from_numpy(raw.copy())
    values = np.zeros(count, dtype=np.uint8)
    chunk_bytes = _CHUNK * bits // 8
    for index, start in enumerate(range(0, count, _CHUNK)):
        n = min(_CHUNK, count - start)
        chunk = raw[index * chunk_bytes : index * chunk_bytes + math.ceil(n * bits / 8)]
        matrix = np.unpackbits(chunk, bitorder="little", count=n * bits).reshape(n, bits)
        for bit in range(bits):
            values[start : start + n] |= matrix[:, bit] << bit
    return torch.from_numpy(values)


@dataclass
class HuffmanCoded:
    """A code stream entropy-coded with canonical Huffman codes.

    Canonical codes are fully determined by the code length of each symbol, so the length table is all a
    decoder needs besides the payload (DEFLATE stores its trees the same way).

    Attributes:
        lengths: uint8 tensor; entry s is the code length in bits of symbol s, 0 for a symbol that never
            occurs. A stream of one distinct symbol gives it a 1-bit code.
        payload: The code bits. Each code is written most significant bit first (so prefixes come first), and
            the stream is packed into bytes LSB first like `pack_bits`; the last byte is zero-padded.
        bit_count: Meaningful bits in `payload`.
    """

    lengths: torch.Tensor
    payload: bytes
    bit_count: int


def huffman_encode(codes: torch.Tensor) -> HuffmanCoded:
    """Huffman-codes a stream of codes in [0, 256), read in row-major order.

    Code lengths stay below 64 bits (the decoder's window) for any stream shorter than about 10**13 codes:
    a length-L Huffman code needs a total count of at least Fibonacci(L + 2).

    Raises:
        ValueError: If a code is not an integer in [0, 256).
    """
    symbols = _symbols(codes, 8)
    frequencies = np.bincount(symbols)
    lengths = _code_lengths(frequencies)
    longest = int(lengths.max(initial=0))
    columns = np.arange(longest)
    # Row s holds the bits of symbol s's code, MSB first; only its first lengths[s] columns are emitted.
    shifts = np.maximum(lengths[:, None].astype(np.int64) - 1 - columns, 0).astype(np.uint64)
    bit_table = ((_canonical_codes(lengths)[:, None] >> shifts) & np.uint64(1)).astype(np.uint8)
    emitted = columns < lengths[:, None]
    parts = []
    carry = np.zeros(0, dtype=np.uint8)
    for start in range(0, symbols.size, _CHUNK):
        chunk = symbols[start : start + _CHUNK]
        stream = np.concatenate((carry, bit_table[chunk][emitted[chunk]]))
        whole = stream.size - stream.size % 8
        parts.append(np.packbits(stream[:whole], bitorder="little").tobytes())
        carry = stream[whole:]
    parts.append(np.packbits(carry, bitorder="little").tobytes())
    bit_count = int(frequencies.astype(np.int64) @ lengths.astype(np.int64)) if symbols.size else 0
    return HuffmanCoded(torch.from_numpy(lengths), b"".join(parts), bit_count)


def huffman_decode(coded: HuffmanCoded) -> torch.Tensor:
    """Inverse of `huffman_encode`: the codes back, as a flat uint8 tensor.

    Vectorized over bit positions: the window of the next `longest` bits at every position is looked up among
    the left-justified canonical codes (which are sorted) to get the symbol and length a code starting there
    would have; only the walk from one code start to the next is a Python loop, one step per code.
    """
    if coded.bit_count == 0:
        return torch.zeros(0, dtype=torch.uint8)
    lengths = coded.lengths.numpy().astype(np.uint8)
    longest = int(lengths.max())
    total = coded.bit_count
    stream = np.unpackbits(np.frombuffer(coded.payload, dtype=np.uint8), bitorder="little", count=total)
    padded = np.concatenate((stream, np.zeros(longest, dtype=np.uint8)))
    window = np.zeros(total, dtype=np.uint64)
    for offset in range(longest):
        window = (window << np.uint64(1)) | padded[offset : offset + total]
    order = _canonical_order(lengths)
    order_lengths = lengths[order].astype(np.uint64)
    starts = _canonical_codes(lengths)[order] << (np.uint64(longest) - order_lengths)
    found = np.searchsorted(starts, window, side="right") - 1
    following = (np.arange(total) + order_lengths[found].astype(np.int64)).tolist()
    positions = []
    position = 0
    while position < total:
        positions.append(position)
        position = following[position]
    return torch.from_numpy(order[found[positions]].astype(np.uint8))


def _code_lengths(frequencies: np.ndarray) -> np.ndarray:
    """Huffman code length of each symbol (0 where its frequency is 0), by merging the two rarest subtrees.

    Ties are broken by creation order, so equal inputs give equal lengths.
    """
    lengths = np.zeros(frequencies.size, dtype=np.uint8)
    present = np.flatnonzero(frequencies)
    if present.size == 1:
        lengths[present] = 1
        return lengths
    heap = [(int(frequencies[symbol]), index, [int(symbol)]) for index, symbol in enumerate(present)]
    heapq.heapify(heap)
    created = len(heap)
    while len(heap) > 1:
        count_a, _, symbols_a = heapq.heappop(heap)
        count_b, _, symbols_b = heapq.heappop(heap)
        merged = symbols_a + symbols_b
        lengths[merged] += 1
        heapq.heappush(heap, (count_a + count_b, created, merged))
        created += 1
    return lengths


def _canonical_order(lengths: np.ndarray) -> np.ndarray:
    """The symbols that occur, sorted by (code length, symbol): the order canonical codes are handed out."""
    order = np.lexsort((np.arange(lengths.size), lengths))
    return order[lengths[order] > 0]


def _canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical code of each symbol (uint64; 0 for absent ones): consecutive integers in canonical order,
    shifted left whenever the length grows."""
    codes = np.zeros(lengths.size, dtype=np.uint64)
    code = previous = 0
    for symbol in _canonical_order(lengths):
        code <<= int(lengths[symbol]) - previous
        codes[symbol] = code
        code += 1
        previous = int(lengths[symbol])
    return codes


def _check_bits(bits: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8:
        raise ValueError(f"bits must be an integer in [1, 8], got {bits!r}")


def _symbols(codes: torch.Tensor, bits: int) -> np.ndarray:
    """`codes` flattened to a uint8 numpy array, after checking every value fits in `bits` bits."""
    _check_bits(bits)
    if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        raise ValueError(f"codes must be an integer tensor, got {codes.dtype}")
    flat = codes.detach().flatten()
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= 2**bits):
        raise ValueError(
            f"codes must lie in [0, {2**bits}) for {bits} bits, got [{int(flat.min())}, {int(flat.max())}]"
        )
    return flat.to(torch.uint8).cpu().numpy()


def encode_coded_state(state: dict[str, torch.Tensor], codes: dict[str, WeightCode], encoding: str) -> bytes:
    """Serializes a state dict with every coded parameter stored as its codes instead of its float values.

    A coded entry becomes `{"bits", "shape", "tables", ...}` plus, for "packed", the `pack_bits` stream as a
    uint8 tensor, or for "huffman", the code-length table, the payload as a uint8 tensor and its bit count.
    Every other tensor (biases, BatchNorm, uncoded weights) is stored dense.

    Args:
        state: The compressed model's state dict.
        codes: `Compressed.codes`, by parameter name.
        encoding: "packed" or "huffman".

    Returns:
        The `torch.save` bytes; `decode_coded_state` reads them back.

    Raises:
        ValueError: On an unknown encoding, a code naming no entry of `state`, or a code shaped unlike its entry.
    """
    if encoding not in _ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(_ENCODINGS)}; got {encoding!r}")
    unknown = sorted(codes.keys() - state.keys())
    if unknown:
        raise ValueError(f"codes name parameters missing from the state: {', '.join(unknown)}")
    entries: dict[str, Any] = {}
    for name, tensor in state.items():
        code = codes.get(name)
        if code is None:
            entries[name] = tensor.detach()
            continue
        if code.codes.shape != tensor.shape:
            raise ValueError(f"codes of {name} have shape {tuple(code.codes.shape)}, the state {tuple(tensor.shape)}")
        entry: dict[str, Any] = {
            "bits": code.bits,
            "shape": list(code.codes.shape),
            "tables": {key: table.detach() for key, table in code.tables.items()},
        }
        if encoding == "packed":
            entry["packed"] = _byte_tensor(pack_bits(code.codes, code.bits))
        else:
            coded = huffman_encode(code.codes)
            entry.update(lengths=coded.lengths, payload=_byte_tensor(coded.payload), bit_count=coded.bit_count)
        entries[name] = entry
    return dense_bytes(entries)


def decode_coded_state(blob: bytes) -> dict[str, torch.Tensor]:
    """Inverse of `encode_coded_state`: the state dict with coded weights decoded by `decode_weight`.

    Decoded weights equal the compressed model's weights bit for bit, because the compressors compute those
    with the same `decode_weight` from the same codes.
    """
    encoded = torch.load(io.BytesIO(blob), weights_only=True)
    state: dict[str, torch.Tensor] = {}
    for name, item in encoded.items():
        if not isinstance(item, dict):
            state[name] = item
            continue
        if "packed" in item:
            flat = unpack_bits(item["packed"].numpy().tobytes(), item["bits"], math.prod(item["shape"]))
        else:
            flat = huffman_decode(HuffmanCoded(item["lengths"], item["payload"].numpy().tobytes(), item["bit_count"]))
        state[name] = decode_weight(WeightCode(flat.reshape(item["shape"]), item["bits"], item["tables"]))
    return state


def coded_sizes(state: dict[str, torch.Tensor], codes: dict[str, WeightCode]) -> dict[str, int]:
    """Byte length of the state stored with its codes bit-packed, and with them Huffman-coded.

    Args:
        state: The compressed model's state dict.
        codes: `Compressed.codes`, by parameter name.

    Returns:
        `size_packed_bytes` and `size_huffman_bytes`, each the length of a real `encode_coded_state` output.
    """
    return {f"size_{encoding}_bytes": len(encode_coded_state(state, codes, encoding)) for encoding in _ENCODINGS}


def _byte_tensor(data: bytes) -> torch.Tensor:
    # Copied: torch.save cannot serialize a tensor over a read-only buffer, and frombuffer rejects b"".
    return torch.from_numpy(np.frombuffer(data, dtype=np.uint8).copy())
