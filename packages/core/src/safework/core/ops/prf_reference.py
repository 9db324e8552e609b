"""Reference implementations of the SipHash-2-4 PRF: the ground truth the native kernels are tested against.

Two of them, on purpose:

* :func:`siphash24_bytes` is a scalar, byte-oriented transcription of the SipHash paper. It is checked against
  the official test vectors and defines what "correct" means.
* :func:`siphash24_reference` / :func:`siphash24_suffix_reference` are vectorised pure-torch versions on
  int64 tensors (so they run on any device torch supports). torch has no uint64 arithmetic, so: additions
  wrap in two's complement exactly like uint64 additions; ``x << b`` drops the high bits as wanted; and the
  logical right shift a rotation needs is emulated by an arithmetic ``>>`` followed by a mask that clears
  the copied sign bits. They are what ``SAFEWORK_OPS=reference`` runs, and they must equal the scalar
  version bit for bit.

The bit layout is documented in :mod:`safework.core.ops.prf` and ``csrc/core/siphash.h``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

_U64 = (1 << 64) - 1
# The four SipHash initialisation constants ("somepseudorandomlygeneratedbytes").
_C0, _C1, _C2, _C3 = 0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573


def to_int64(value: int) -> int:
    """Reinterpret a uint64 as the int64 with the same bits (what the tensors store)."""
    value &= _U64
    return value - (1 << 64) if value >= 1 << 63 else value


def to_uint64(value: int) -> int:
    """Reinterpret an int64 (or any int) as the uint64 with the same low 64 bits."""
    return value & _U64


# ----------------------------------------------------------------------------------------------- scalar


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _U64


def _sip_round(v: list[int]) -> None:
    v[0] = (v[0] + v[1]) & _U64
    v[1] = _rotl(v[1], 13) ^ v[0]
    v[0] = _rotl(v[0], 32)
    v[2] = (v[2] + v[3]) & _U64
    v[3] = _rotl(v[3], 16) ^ v[2]
    v[0] = (v[0] + v[3]) & _U64
    v[3] = _rotl(v[3], 21) ^ v[0]
    v[2] = (v[2] + v[1]) & _U64
    v[1] = _rotl(v[1], 17) ^ v[2]
    v[2] = _rotl(v[2], 32)


def siphash24_bytes(key: bytes, message: bytes) -> int:
    """SipHash-2-4 of ``message`` under the 16-byte ``key``, as an unsigned 64-bit int (the paper's)."""
    if len(key) != 16:
        raise ValueError(f"a SipHash key is exactly 16 bytes, got {len(key)}; pass 16 secret bytes")
    k0 = int.from_bytes(key[:8], "little")
    k1 = int.from_bytes(key[8:], "little")
    v = [k0 ^ _C0, k1 ^ _C1, k0 ^ _C2, k1 ^ _C3]
    whole = len(message) - len(message) % 8
    blocks = [int.from_bytes(message[i : i + 8], "little") for i in range(0, whole, 8)]
    # Final block: the leftover bytes, little-endian, with (length mod 256) in the top byte.
    blocks.append(int.from_bytes(message[whole:], "little") | ((len(message) & 0xFF) << 56))
    for m in blocks:
        v[3] ^= m
        _sip_round(v)
        _sip_round(v)
        v[0] ^= m
    v[2] ^= 0xFF
    for _ in range(4):
        _sip_round(v)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def words_to_bytes(words: Sequence[int]) -> bytes:
    """The message bytes of a row of words: each word as 8 little-endian bytes (negative ints as int64)."""
    return b"".join(to_uint64(w).to_bytes(8, "little") for w in words)


def key_words_to_bytes(k0: int, k1: int) -> bytes:
    """The 16 key bytes of the key words (k0, k1)."""
    return words_to_bytes([k0, k1])


def siphash24_words_scalar(k0: int, k1: int, words: Sequence[int]) -> int:
    """Scalar SipHash-2-4 of one row of words, returned as int64 (the value the tensor ops produce)."""
    return to_int64(siphash24_bytes(key_words_to_bytes(k0, k1), words_to_bytes(words)))


# ----------------------------------------------------------------------------------------- vectorised

_State = list[torch.Tensor]


def _t_rotl(x: torch.Tensor, b: int) -> torch.Tensor:
    # (x >> (64 - b)) is arithmetic on int64; the mask keeps only the b bits a logical shift would leave.
    low = (x >> (64 - b)).bitwise_and_((1 << b) - 1)
    return (x << b).bitwise_or_(low)


def _t_round(v: _State) -> None:
    v[0].add_(v[1])
    v[1] = _t_rotl(v[1], 13).bitwise_xor_(v[0])
    v[0] = _t_rotl(v[0], 32)
    v[2].add_(v[3])
    v[3] = _t_rotl(v[3], 16).bitwise_xor_(v[2])
    v[0].add_(v[3])
    v[3] = _t_rotl(v[3], 21).bitwise_xor_(v[0])
    v[2].add_(v[1])
    v[1] = _t_rotl(v[1], 17).bitwise_xor_(v[2])
    v[2] = _t_rotl(v[2], 32)


def _t_init(key: torch.Tensor, shape: tuple[int, ...]) -> _State:
    k0 = key[0].expand(shape)
    k1 = key[1].expand(shape)
    return [
        torch.bitwise_xor(k0, _C0),
        torch.bitwise_xor(k1, _C1),
        torch.bitwise_xor(k0, _C2),
        torch.bitwise_xor(k1, _C3),
    ]


def _t_absorb(v: _State, m: torch.Tensor | int) -> None:
    v[3] = v[3] ^ m
    _t_round(v)
    _t_round(v)
    v[0] = v[0] ^ m


def _t_finish(v: _State, n_words: int) -> torch.Tensor:
    _t_absorb(v, to_int64(((8 * n_words) & 0xFF) << 56))
    v[2] = v[2] ^ 0xFF
    for _ in range(4):
        _t_round(v)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


# Work in blocks of this many hashes: each temporary then stays in cache and the allocator reuses it, instead
# of paying page faults for fresh multi-megabyte buffers on every one of the ~300 elementwise ops.
CHUNK = 1 << 15


def siphash24_reference(key: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
    """Pure-torch SipHash-2-4 of each row of ``words`` ((N, W) int64) under ``key`` ((2,) int64) -> (N,)."""
    n, w = words.shape
    out = torch.empty(n, dtype=torch.int64, device=words.device)
    for start in range(0, n, CHUNK):
        block = words[start : start + CHUNK]
        v = _t_init(key, (block.shape[0],))
        for i in range(w):
            _t_absorb(v, block[:, i])
        out[start : start + CHUNK] = _t_finish(v, w)
    return out


def siphash24_suffix_reference(key: torch.Tensor, prefix: torch.Tensor, n: int) -> torch.Tensor:
    """Pure-torch SipHash-2-4 of ``[prefix[r]..., j]`` for every row r and j < n -> (B, n).

    The prefix is absorbed once per row and the state broadcast over the candidates, which is the same
    arithmetic as hashing the concatenated rows (tested) at a fraction of the cost.
    """
    rows, w = prefix.shape
    v = _t_init(key, (rows,))
    for i in range(w):
        _t_absorb(v, prefix[:, i])
    out = torch.empty(rows, n, dtype=torch.int64, device=prefix.device)
    step = max(1, CHUNK // max(rows, 1))
    for start in range(0, n, step):
        stop = min(n, start + step)
        candidates = torch.arange(start, stop, dtype=torch.int64, device=prefix.device)
        lanes = [lane.unsqueeze(1).expand(rows, stop - start).contiguous() for lane in v]
        _t_absorb(lanes, candidates)
        out[:, start:stop] = _t_finish(lanes, w + 1)
    return out
