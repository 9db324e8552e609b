"""The keyed PRF every watermark green list and permutation is drawn from: SipHash-2-4 on int64 tensors.

Why SipHash-2-4 (and not Philox or torch's RNG): green lists must be unpredictable to anyone without the
128-bit key, which is a PRF property; SipHash is a keyed PRF built for short inputs and comes with that
security claim, Philox is a counter-based RNG with none. On 3-4 words SipHash costs 10-12 rounds of add/
xor/rotate, cheap enough to hash a whole 49k vocabulary per generated row, and identical on CPU and CUDA.

Exact bit layout (also in ``csrc/core/siphash.h``):

* key: a (2,) int64 tensor ``[k0, k1]``; k0/k1 are the 16 key bytes read little-endian (bytes 0-7, 8-15).
  :func:`key_from_bytes` does that conversion.
* message: one row of W int64 words, each serialised as its 8 little-endian two's-complement bytes, so the
  message is 8W bytes and each word is one SipHash block; the final block is just the length byte
  ``(8W mod 256) << 56``.
* output: the standard SipHash-2-4 uint64 of those bytes, stored in int64 (two's-complement reinterpretation;
  ``value & (2**64 - 1)`` recovers the unsigned number).

So ``siphash24(key, words)[i]`` equals the reference SipHash-2-4 of ``words[i]``'s bytes; the official test
vectors hold at whole-word lengths. Native kernels run on CPU (OpenMP) and CUDA; ``SAFEWORK_OPS`` chooses
between them and the pure-torch reference (see :mod:`safework.core.ops.mode`).
"""

from __future__ import annotations

import torch

from safework.core.errors import ConfigError
from safework.core.ops.dispatch import native_module
from safework.core.ops.prf_reference import siphash24_reference, siphash24_suffix_reference, to_int64

OP = "prf"


class OpInputError(ConfigError, ValueError):
    """A tensor handed to a native op has the wrong dtype, shape, layout or device."""


def key_from_bytes(secret: bytes, device: torch.device | str | None = None) -> torch.Tensor:
    """The (2,) int64 key tensor for a 16-byte secret (k0 = bytes 0-7, k1 = bytes 8-15, little-endian)."""
    if not isinstance(secret, bytes | bytearray) or len(secret) != 16:
        raise OpInputError(
            f"a PRF key is exactly 16 bytes, got {type(secret).__name__} of length {len(secret)}; "
            "generate one with os.urandom(16)"
        )
    words = [to_int64(int.from_bytes(secret[i : i + 8], "little")) for i in (0, 8)]
    return torch.tensor(words, dtype=torch.int64, device=device)


def _check(key: torch.Tensor, data: torch.Tensor, what: str) -> None:
    if not isinstance(key, torch.Tensor) or not isinstance(data, torch.Tensor):
        raise OpInputError(
            f"key and {what} must be torch tensors, got {type(key).__name__}, {type(data).__name__}"
        )
    if key.dtype != torch.int64 or key.shape != (2,):
        raise OpInputError(
            f"key must be an int64 tensor of shape (2,), got {key.dtype} {tuple(key.shape)}; "
            "build it with safework.core.ops.prf.key_from_bytes(secret16)"
        )
    if data.dtype != torch.int64:
        raise OpInputError(f"{what} must be int64, got {data.dtype}; convert with .to(torch.int64)")
    if data.dim() != 2:
        raise OpInputError(
            f"{what} must be 2-D (rows, words), got shape {tuple(data.shape)}; use .reshape(-1, W) "
            "or .unsqueeze(0) for a single row"
        )
    if not data.is_contiguous() or not key.is_contiguous():
        raise OpInputError(f"key and {what} must be contiguous; call .contiguous() first")
    if key.device != data.device:
        raise OpInputError(f"key is on {key.device} but {what} is on {data.device}; move both to one device")


def siphash24(key: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
    """SipHash-2-4 of each row of ``words`` ((N, W) int64) under ``key`` ((2,) int64) -> (N,) int64."""
    _check(key, words, "words")
    module = native_module(OP, words.device)
    if module is None:
        return siphash24_reference(key, words)
    result: torch.Tensor = module.siphash24(key, words)
    return result


def siphash24_suffix(key: torch.Tensor, prefix: torch.Tensor, n: int) -> torch.Tensor:
    """SipHash-2-4 of the row ``[prefix[b]..., j]`` for each row b and each j < n -> (B, n) int64.

    The watermark's green-list core: ``prefix`` holds (context..., payload) per batch row and j ranges over
    the vocabulary, so one call hashes a whole batch against the whole vocabulary. Equal, bit for bit, to
    ``siphash24`` of the concatenated rows (``W+1`` words each), but the prefix is absorbed once per row.
    """
    _check(key, prefix, "prefix")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise OpInputError(
            f"n must be a non-negative int (the number of candidates, e.g. vocab size), got {n!r}"
        )
    module = native_module(OP, prefix.device)
    if module is None:
        return siphash24_suffix_reference(key, prefix, n)
    result: torch.Tensor = module.siphash24_suffix(key, prefix, n)
    return result
