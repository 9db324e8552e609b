"""Pure-torch references of the CredID green-list kernels: the ground truth the native ops are tested against.

The definitions (also in :mod:`safework.watermark.kernels` and ``csrc/watermark/credid.h``): under a prefix,
token v has hash ``x(v) = siphash(key, prefix ++ [v])`` (uint64) and order key ``(x(v), v)``; ``S(v)`` adds
the float64 masses of the tops whose key is <= v's one by one in ascending key order from 0.0, and v is
green when ``S(v) + rest * u(x(v)) > tau`` with ``u(x) = (x >> 11) * 2^-53``. Every float operation here is
a single rounded torch op (no cumsum, whose CUDA scan reorders additions, no addcmul), so these functions
give the same bits as the native kernels on CPU and on CUDA.

torch has no uint64: hashes stay in int64, unsigned order is signed order after flipping the sign bit, the
logical shift is an arithmetic shift plus a mask, and ``x mod P`` corrects negative values by ``2^64 mod P``.
These functions do not validate; :mod:`safework.watermark.kernels` does.
"""

from __future__ import annotations

import torch

from safework.core.ops.prf_reference import siphash24_reference, siphash24_suffix_reference
from safework.watermark.hashing import uniform01, unsigned_mod

_SIGN = -(2**63)
# Rows of (prefix ++ [last word]) hashed per block in green_table_reference (bounds its memory).
TABLE_BLOCK = 1 << 18


def ordered(x: torch.Tensor) -> torch.Tensor:
    """int64 hashes whose *signed* order is the unsigned order of ``x`` (the sign bit flipped)."""
    return x ^ _SIGN


def sort_tops(
    x_top: torch.Tensor, top_ids: torch.Tensor, top_probs: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each row's tops in ascending ``(unsigned x, id)`` key order: ``(ordered x, ids, float64 masses)``.

    A stable sort by id, then a stable sort by hash: equal hashes keep ascending id order.
    """
    by_id = torch.argsort(top_ids, dim=1, stable=True)
    xo = ordered(x_top).gather(1, by_id)
    by_x = torch.argsort(xo, dim=1, stable=True)
    perm = by_id.gather(1, by_x)
    return xo.gather(1, by_x), top_ids.gather(1, perm), top_probs.gather(1, perm).to(torch.float64)


def count_le(
    sorted_xo: torch.Tensor, sorted_ids: torch.Tensor, xq: torch.Tensor, iq: torch.Tensor
) -> torch.Tensor:
    """How many of each row's sorted top keys are <= the query keys ``(xq, iq)`` ((R, M) int64 counts)."""
    qo = ordered(xq).contiguous()
    left = torch.searchsorted(sorted_xo, qo)
    span = torch.searchsorted(sorted_xo, qo, right=True) - left
    count = left.clone()
    widest = int(span.max()) if span.numel() else 0
    last = sorted_xo.shape[1] - 1
    for j in range(widest):  # equal hashes: the ids (ascending within a tie) decide; 1 round = the top itself
        ids = sorted_ids.gather(1, (left + j).clamp(max=last))
        count += ((j < span) & (ids <= iq)).to(torch.int64)
    return count


def green_from_hashes_reference(
    x_top: torch.Tensor,
    top_ids: torch.Tensor,
    top_probs: torch.Tensor,
    rest: torch.Tensor,
    x_query: torch.Tensor,
    query_ids: torch.Tensor,
    tau: float,
) -> torch.Tensor:
    """green of queries ``(x_query, query_ids)`` (R, M) against row r's tops with hashes ``x_top`` (R, K)."""
    rows, k = top_ids.shape
    sorted_xo, sorted_ids, masses = sort_tops(x_top, top_ids, top_probs)
    sums = torch.zeros(rows, k + 1, dtype=torch.float64, device=masses.device)
    for i in range(k):  # sequential float64 additions in key order: the contract, not a cumsum
        sums[:, i + 1] = sums[:, i] + masses[:, i]
    s = sums.gather(1, count_le(sorted_xo, sorted_ids, x_query, query_ids))
    return (s + rest[:, None] * uniform01(x_query)) > tau


def green_mask_reference(
    key: torch.Tensor,
    prefix: torch.Tensor,
    top_ids: torch.Tensor,
    top_probs: torch.Tensor,
    rest: torch.Tensor,
    n: int,
    tau: float,
) -> torch.Tensor:
    """(B, n) bool: green(v) for v < n of each row under ``prefix[b]``."""
    x = siphash24_suffix_reference(key, prefix, n)
    queries = torch.arange(n, device=prefix.device).expand(prefix.shape[0], n)
    return green_from_hashes_reference(x.gather(1, top_ids), top_ids, top_probs, rest, x, queries, tau)


def green_bias_reference(
    key: torch.Tensor,
    prefix: torch.Tensor,
    top_ids: torch.Tensor,
    top_probs: torch.Tensor,
    rest: torch.Tensor,
    n: int,
    tau: float,
    logits: torch.Tensor,
    delta: float,
) -> None:
    """``logits[b, v] += delta`` (float32 add) where green, in place; other entries keep their bits."""
    mask = green_mask_reference(key, prefix, top_ids, top_probs, rest, n, tau)
    logits.copy_(torch.where(mask, logits + delta, logits))


def green_table_reference(
    key: torch.Tensor,
    context: torch.Tensor,
    tokens: torch.Tensor,
    top_ids: torch.Tensor,
    top_probs: torch.Tensor,
    rest: torch.Tensor,
    p: int,
    tau: float,
) -> torch.Tensor:
    """(T, P) bool: green(tokens[t]) under the prefix ``context[t] ++ [r]`` for r < P."""
    t_rows, w = context.shape
    k = top_ids.shape[1]
    out = torch.empty(t_rows, p, dtype=torch.bool, device=context.device)
    step = max(1, TABLE_BLOCK // (p * (k + 1)))
    r = torch.arange(p, device=context.device)
    for t0 in range(0, t_rows, step):
        t1 = min(t_rows, t0 + step)
        tc = t1 - t0
        last = torch.cat([top_ids[t0:t1], tokens[t0:t1, None]], dim=1)  # (tc, K+1): tops, then the token
        words = torch.cat(
            [
                context[t0:t1, None, None, :].expand(tc, p, k + 1, w),
                r[None, :, None, None].expand(tc, p, k + 1, 1),
                last[:, None, :, None].expand(tc, p, k + 1, 1),
            ],
            dim=3,
        ).reshape(-1, w + 2)
        x = siphash24_reference(key, words).view(tc * p, k + 1)
        green = green_from_hashes_reference(
            x[:, :k],
            top_ids[t0:t1].repeat_interleave(p, 0),
            top_probs[t0:t1].repeat_interleave(p, 0),
            rest[t0:t1].repeat_interleave(p, 0),
            x[:, k:],
            tokens[t0:t1].repeat_interleave(p)[:, None],
            tau,
        )
        out[t0:t1] = green.view(tc, p)
    return out


def candidate_counts_reference(
    key: torch.Tensor,
    index_context: torch.Tensor,
    green: torch.Tensor,
    slots: torch.Tensor,
    n_slots: int,
    n_candidates: int,
) -> torch.Tensor:
    """(J, C) int64: ``counts[slots[t], m] += green[t, siphash(index_context[t] ++ [m]) mod P]``."""
    r = unsigned_mod(siphash24_suffix_reference(key, index_context, n_candidates), green.shape[1])
    hits = green.gather(1, r).to(torch.int64)
    keep = slots >= 0
    counts = torch.zeros(n_slots, n_candidates, dtype=torch.int64, device=green.device)
    return counts.index_add_(0, slots[keep], hits[keep])
