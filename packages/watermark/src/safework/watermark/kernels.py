"""CredID green-list kernels: the embedding hot path (green mask / logit bias over the vocabulary) and the
extraction hot path (green tables over payload candidates, per-slot candidate counts), native or reference.

Why native: the CredID green list of a step depends on the model's top-K distribution, so it is recomputed
for every generated token (49k hashes plus a sort of K tops) and, at extraction, for every (token, payload
candidate) pair (K+1 hashes and a sort each). The torch reference needs hundreds of small ops for that;
``csrc/watermark/`` (op ``credid``, CPU/OpenMP and CUDA) does it in one pass.

Definitions (``K`` = SipHash key, (2,) int64 as in :mod:`safework.core.ops.prf`; hashes are SipHash-2-4 of
whole int64 words; "unsigned" is the uint64 reading of the same bits):

* ``x(prefix, v) = siphash(K, prefix ++ [v])``; ``u(x) = (x >> 11) * 2^-53`` (exact float64 in [0, 1)).
* order key of token v under a prefix: ``(unsigned x(prefix, v), v)``, lexicographic.
* For a row with tops ``T`` (distinct ids; probability-0 entries are allowed as padding), float32 masses
  ``p_k`` and float64 rest mass ``R``: ``S(v)`` adds ``float64(p_k)`` over the tops whose key is <= v's,
  one by one in ascending key order from 0.0 (round to nearest, no fma); ``cum(v) = S(v) + R * u(x(v))``
  (one multiply, then one add); ``green(v) = cum(v) > tau``. A top token counts its own mass.

Results are bit-identical across the reference, the CPU kernels and the CUDA kernels (all float operations
are single IEEE roundings in a fixed order). ``SAFEWORK_OPS`` chooses native or reference as for every op.
Inputs are validated here, values included, with errors (:class:`OpInputError`) that say what to change;
on CUDA those value checks cost one device sync per call.
"""

from __future__ import annotations

import math

import torch

from safework.core.ops.dispatch import native_module
from safework.core.ops.prf import OpInputError
from safework.watermark.kernels_reference import (
    candidate_counts_reference,
    green_bias_reference,
    green_from_hashes_reference,
    green_mask_reference,
    green_table_reference,
)

OP = "credid"
MAX_CANDIDATES = 4096


def _tensor(value: object, name: str, dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise OpInputError(f"{name} must be a torch tensor, got {type(value).__name__}")
    if value.dtype != dtype:
        raise OpInputError(f"{name} must be {dtype}, got {value.dtype}; convert with .to({dtype})")
    if tuple(value.shape) != shape:
        raise OpInputError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
    if not value.is_contiguous():
        raise OpInputError(f"{name} must be contiguous; call .contiguous() first")
    return value


def _words(value: object, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.dim() != 2:
        got = f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
        raise OpInputError(f"{name} must be a 2-D int64 tensor (rows, words), got {got}")
    return _tensor(value, name, torch.int64, tuple(value.shape))


def _same_device(ref: torch.Tensor, **tensors: torch.Tensor) -> None:
    for name, t in tensors.items():
        if t.device != ref.device:
            raise OpInputError(
                f"{name} is on {t.device} but the other inputs are on {ref.device}; "
                "move all inputs to one device"
            )


def _count(value: object, name: str, low: int, high: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise OpInputError(f"{name} must be an int {bound}, got {value!r}")
    return value


def _finite(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, float | int) or not math.isfinite(value):
        raise OpInputError(f"{name} must be a finite float, got {value!r}")
    return float(value)


def _check_values(problems: list[tuple[torch.Tensor, str]]) -> None:
    """Raise for the first flag that is set; all flags come to the host in one transfer (one sync on CUDA)."""
    if not problems:
        return
    flags = torch.stack([flag.reshape(()) for flag, _ in problems]).tolist()
    for flag, (_, message) in zip(flags, problems, strict=True):
        if flag:
            raise OpInputError(message)


def _tops(
    key: torch.Tensor,
    top_ids: object,
    top_probs: object,
    rest: object,
    rows: int,
    id_limit: int | None,
    *,
    values: bool = True,
) -> list[tuple[torch.Tensor, str]]:
    """Checks the tops' layout now; returns their value checks (ids in range and distinct, masses finite),
    none when ``values`` is False (tops already checked by :func:`check_tops`)."""
    if not isinstance(top_ids, torch.Tensor) or top_ids.dim() != 2 or top_ids.shape[1] < 1:
        got = f"shape {tuple(top_ids.shape)}" if isinstance(top_ids, torch.Tensor) else type(top_ids).__name__
        raise OpInputError(f"top_ids must be a 2-D int64 tensor (rows, K) with K >= 1, got {got}")
    k = top_ids.shape[1]
    ids = _tensor(top_ids, "top_ids", torch.int64, (rows, k))
    probs = _tensor(top_probs, "top_probs", torch.float32, (rows, k))
    mass = _tensor(rest, "rest", torch.float64, (rows,))
    _same_device(key, top_ids=ids, top_probs=probs, rest=mass)
    if not values:
        return []
    out_of_range = (ids < 0) if id_limit is None else (ids < 0) | (ids >= id_limit)
    high = "" if id_limit is None else f" and < n={id_limit}"
    ordered = ids.sort(dim=1).values
    return [
        (out_of_range.any(), f"top_ids must be >= 0{high} (token ids)"),
        (
            (ordered[:, 1:] == ordered[:, :-1]).any(),
            "top_ids must be distinct within each row; pad short rows with unused ids of probability 0",
        ),
        (~torch.isfinite(probs).all() | (probs < 0).any(), "top_probs must be finite and >= 0"),
        (~torch.isfinite(mass).all() | (mass < 0).any(), "rest must be finite and >= 0"),
    ]


def check_tops(top_ids: torch.Tensor, top_probs: torch.Tensor, rest: torch.Tensor) -> None:
    """Validate top-K inputs once (layout, ids >= 0 and distinct per row, masses finite and >= 0).

    Extraction under many candidate keys reuses one proxy output; checking it once and passing
    ``tops_checked=True`` to :func:`green_table` keeps the sort and scans out of the per-key loop.
    """
    rows = top_ids.shape[0] if isinstance(top_ids, torch.Tensor) and top_ids.dim() == 2 else 0
    ref = top_ids if isinstance(top_ids, torch.Tensor) else torch.empty(0)
    _check_values(_tops(ref, top_ids, top_probs, rest, rows, None))


def _key(key: object) -> torch.Tensor:
    if not isinstance(key, torch.Tensor) or key.dtype != torch.int64 or tuple(key.shape) != (2,):
        raise OpInputError(
            "key must be an int64 tensor of shape (2,); build it with "
            "safework.core.ops.prf.key_from_bytes(secret16)"
        )
    return _tensor(key, "key", torch.int64, (2,))


def _vocab_inputs(
    key: object, prefix: object, top_ids: object, top_probs: object, rest: object, n: object, tau: object
) -> tuple[torch.Tensor, torch.Tensor, int, float, list[tuple[torch.Tensor, str]]]:
    k = _key(key)
    words = _words(prefix, "prefix")
    _same_device(k, prefix=words)
    size = _count(n, "n (the vocabulary size)", 1)
    threshold = _finite(tau, "tau")
    return k, words, size, threshold, _tops(k, top_ids, top_probs, rest, words.shape[0], size)


def green_mask(
    key: torch.Tensor,
    prefix: torch.Tensor,
    top_ids: torch.Tensor,
    top_probs: torch.Tensor,
    rest: torch.Tensor,
    n: int,
    tau: float,
) -> torch.Tensor:
    """(B, n) bool: ``green(v)`` for every v < n, row b under ``prefix[b]`` ((B, W) int64).

    ``top_ids`` (B, K) int64 distinct ids in [0, n), ``top_probs`` (B, K) float32, ``rest`` (B,) float64.
    """
    k, words, size, threshold, problems = _vocab_inputs(key, prefix, top_ids, top_probs, rest, n, tau)
    _check_values(problems)
    module = native_module(OP, words.device)
    if module is None:
        return green_mask_reference(k, words, top_ids, top_probs, rest, size, threshold)
    result: torch.Tensor = module.green_mask(k, words, top_ids, top_probs, rest, size, threshold)
    return result


def green_bias(
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
    """Add ``delta`` to ``logits[b, v]`` ((B, n) float32, contiguous) where ``green(v)``, in place.

    Same inputs as :func:`green_mask`; the mask is never materialised. ``delta`` is rounded to float32 once
    and added with one float32 addition; other entries keep their exact bits (-0.0 included).
    """
    k, words, size, threshold, problems = _vocab_inputs(key, prefix, top_ids, top_probs, rest, n, tau)
    target = _tensor(logits, "logits", torch.float32, (words.shape[0], size))
    _same_device(k, logits=target)
    shift = float(torch.tensor(_finite(delta, "delta"), dtype=torch.float32))
    if not math.isfinite(shift):
        raise OpInputError(f"delta={delta!r} overflows float32; use a delta of moderate size")
    _check_values(problems)
    module = native_module(OP, words.device)
    if module is None:
        green_bias_reference(k, words, top_ids, top_probs, rest, size, threshold, target, shift)
        return
    module.green_bias(k, words, top_ids, top_probs, rest, target, threshold, shift)


def green_table(
    key: torch.Tensor,
    context: torch.Tensor,
    tokens: torch.Tensor,
    top_ids: torch.Tensor,
    top_probs: torch.Tensor,
    rest: torch.Tensor,
    P: int,
    tau: float,
    *,
    tops_checked: bool = False,
) -> torch.Tensor:
    """(T, P) bool: entry [t, r] is ``green(tokens[t])`` under the prefix ``context[t] ++ [r]``.

    ``context`` (T, W) int64, ``tokens`` (T,) int64 >= 0 (inside or outside the tops), ``top_ids`` (T, K)
    int64 distinct ids >= 0, ``top_probs`` (T, K) float32, ``rest`` (T,) float64. ``tops_checked``: the
    tops' values already passed :func:`check_tops` (their layout is still checked).
    """
    k = _key(key)
    words = _words(context, "context")
    rows = words.shape[0]
    toks = _tensor(tokens, "tokens", torch.int64, (rows,))
    _same_device(k, context=words, tokens=toks)
    size = _count(P, "P (the number of payload candidates)", 1)
    threshold = _finite(tau, "tau")
    problems = _tops(k, top_ids, top_probs, rest, rows, None, values=not tops_checked)
    _check_values([*problems, ((toks < 0).any(), "tokens must be >= 0 (token ids)")])
    module = native_module(OP, words.device)
    if module is None:
        return green_table_reference(k, words, toks, top_ids, top_probs, rest, size, threshold)
    result: torch.Tensor = module.green_table(k, words, toks, top_ids, top_probs, rest, size, threshold)
    return result


def candidate_counts(
    key: torch.Tensor,
    index_context: torch.Tensor,
    green: torch.Tensor,
    slots: torch.Tensor,
    n_slots: int,
    n_candidates: int,
) -> torch.Tensor:
    """(J, C) int64: ``counts[slots[t], m] += green[t, siphash(index_context[t] ++ [m]) mod P]`` for m < C.

    ``index_context`` (T, W) int64, ``green`` (T, P) bool (a :func:`green_table`), ``slots`` (T,) int64 in
    [-1, J) where -1 skips the row. Integer sums: identical on every path.
    """
    k = _key(key)
    words = _words(index_context, "index_context")
    rows = words.shape[0]
    if not isinstance(green, torch.Tensor) or green.dim() != 2 or green.shape[1] < 1:
        got = f"shape {tuple(green.shape)}" if isinstance(green, torch.Tensor) else type(green).__name__
        raise OpInputError(f"green must be a 2-D bool tensor (T, P) with P >= 1, got {got}")
    table = _tensor(green, "green", torch.bool, (rows, green.shape[1]))
    where = _tensor(slots, "slots", torch.int64, (rows,))
    _same_device(k, index_context=words, green=table, slots=where)
    j = _count(n_slots, "n_slots", 1)
    c = _count(n_candidates, "n_candidates", 1, MAX_CANDIDATES)
    _check_values([(((where < -1) | (where >= j)).any(), f"slots must lie in [-1, {j}) (-1 skips a row)")])
    module = native_module(OP, words.device)
    if module is None:
        return candidate_counts_reference(k, words, table, where, j, c)
    result: torch.Tensor = module.candidate_counts(k, words, table, where, j, c)
    return result


def green_from_hashes(
    x_top: torch.Tensor,
    top_ids: torch.Tensor,
    top_probs: torch.Tensor,
    rest: torch.Tensor,
    x_query: torch.Tensor,
    query_ids: torch.Tensor,
    tau: float,
    *,
    per_query: bool = False,
) -> torch.Tensor:
    """(R, M) bool: the green rule on given hashes, without SipHash: query (r, i) has hash ``x_query[r, i]``
    and id ``query_ids[r, i]``, row r's tops have hashes ``x_top[r]`` ((R, K) int64, uint64 bits).

    Exists because hash ties (equal x, order decided by id) cannot be provoked through SipHash, so the order
    logic is tested here. ``per_query`` picks the native routine: False the sorted table + binary search of
    :func:`green_mask`, True the per-query filter + sort of :func:`green_table`; both give the same bits.
    """
    xq = _words(x_query, "x_query")
    rows, m = xq.shape
    ids = _tensor(query_ids, "query_ids", torch.int64, (rows, m))
    problems = _tops(xq, top_ids, top_probs, rest, rows, None)
    xt = _tensor(x_top, "x_top", torch.int64, (rows, top_ids.shape[1]))
    _same_device(xq, x_top=xt, query_ids=ids)
    threshold = _finite(tau, "tau")
    _check_values(problems)
    module = native_module(OP, xq.device)
    if module is None:
        return green_from_hashes_reference(xt, top_ids, top_probs, rest, xq, ids, threshold)
    result: torch.Tensor = module.green_from_hashes(
        xt, top_ids, top_probs, rest, xq, ids, threshold, per_query
    )
    return result
