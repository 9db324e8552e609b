"""Keyed hashing shared by every scheme: domain tags, contexts, slots and unsigned reductions.

Every pseudo-random choice a scheme makes is one SipHash-2-4 call (:mod:`safework.core.ops.prf`) on a row of
int64 words whose first word is a domain tag, so the green list of one purpose can never be replayed as the
slot choice of another. Rows are ``[tag, context tokens..., extra words...]``; the context is the ``h``
tokens before the position being generated or scored.
"""

from __future__ import annotations

import torch

from safework.core.ops.prf import siphash24, siphash24_suffix

# Domain tags ("SW" + purpose). Changing one changes every watermark made with it: they are part of the
# scheme's versioned definition.
TAG_SLOT = 0x5357_0001  # which payload slot a position carries
TAG_INDEX = 0x5357_0002  # credid: which of the P permutations a (context, symbol) uses
TAG_PERM = 0x5357_0003  # credid: the permutation order of the vocabulary
TAG_KGW = 0x5357_0004  # kgw: green list
TAG_MPAC = 0x5357_0005  # mpac: colour list of each token
TAG_CTWL = 0x5357_0006  # ctwl-hash: green list of each (context, symbol)
TAG_TIEBREAK = 0x5357_0007  # randomised p-values: the uniform draw that breaks ties

_LOW32 = 0xFFFFFFFF
_MANTISSA = (1 << 53) - 1


def unsigned_mod(x: torch.Tensor, m: int) -> torch.Tensor:
    """``x`` read as uint64, modulo ``m`` (1 <= m < 2**31); exact, in int64 arithmetic."""
    hi = (x >> 32) & _LOW32
    lo = x & _LOW32
    return ((hi % m) * ((1 << 32) % m) + lo % m) % m


def uniform01(x: torch.Tensor) -> torch.Tensor:
    """The top 53 bits of ``x`` (as uint64) as a float64 in [0, 1): exact and identical on every device."""
    return ((x >> 11) & _MANTISSA).to(torch.float64) * (2.0**-53)


def tagged(tag: int, context: torch.Tensor, *extra: torch.Tensor | int) -> torch.Tensor:
    """Rows ``[tag, context..., extra...]`` (N, 1 + h + len(extra)) int64 for N contexts (N, h)."""
    n = context.shape[0]
    columns = [torch.full((n, 1), tag, dtype=torch.int64, device=context.device), context.to(torch.int64)]
    for value in extra:
        if isinstance(value, int):
            columns.append(torch.full((n, 1), value, dtype=torch.int64, device=context.device))
        else:
            columns.append(value.to(torch.int64).reshape(n, 1))
    return torch.cat(columns, dim=1).contiguous()


def hash_rows(key: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """SipHash of each row (an empty batch gives an empty result)."""
    if rows.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64, device=rows.device)
    return siphash24(key, rows)


def hash_vocab(key: torch.Tensor, rows: torch.Tensor, vocab: int) -> torch.Tensor:
    """SipHash of ``row ++ [v]`` for every v < vocab: (N, vocab)."""
    if rows.shape[0] == 0:
        return torch.empty(0, vocab, dtype=torch.int64, device=rows.device)
    return siphash24_suffix(key, rows, vocab)


def contexts(ids: torch.Tensor, width: int) -> torch.Tensor:
    """(T, width) previous-token windows for every position t of a 1-D id sequence (t < width: padded -1).

    Positions before ``width`` have an incomplete context and are never scored; their rows exist only so that
    position t is row t.
    """
    ids = ids.to(torch.int64)
    padded = torch.cat([torch.full((width,), -1, dtype=torch.int64, device=ids.device), ids])
    return padded.unfold(0, width, 1)[: ids.shape[0]].contiguous()


def slots_for(key: torch.Tensor, context: torch.Tensor, n_slots: int) -> torch.Tensor:
    """The payload slot each context carries: keyed hash of the context, modulo J."""
    if n_slots == 1:
        return torch.zeros(context.shape[0], dtype=torch.int64, device=context.device)
    return unsigned_mod(hash_rows(key, tagged(TAG_SLOT, context)), n_slots)


def first_occurrences(context: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mask of positions whose (context, token) pair has not appeared earlier in the text.

    A repeated pair repeats the same green-list draw, so counting it twice double-counts one coin flip and
    breaks the p-value (the reference toolkit and transformers' detector without ignore_repeated_ngrams).
    """
    seen: set[tuple[int, ...]] = set()
    keep = torch.zeros(tokens.shape[0], dtype=torch.bool)
    rows = torch.cat([context, tokens.reshape(-1, 1)], dim=1).tolist()
    for t, row in enumerate(rows):
        pair = tuple(row)
        if pair not in seen:
            seen.add(pair)
            keep[t] = True
    return keep.to(tokens.device)
