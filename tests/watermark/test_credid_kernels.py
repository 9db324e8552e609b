"""CredID green-list kernels: scalar oracle == torch reference == native CPU (== CUDA), bit for bit."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from safework.core.ops.prf import OpInputError, key_from_bytes
from safework.core.ops.prf_reference import siphash24_words_scalar, to_uint64
from safework.watermark import kernels_reference as ref
from safework.watermark.kernels import (
    candidate_counts,
    green_bias,
    green_from_hashes,
    green_mask,
    green_table,
)

CSRC = Path(__file__).resolve().parents[2] / "csrc"
KEY = key_from_bytes(bytes.fromhex("00112233445566778899aabbccddeeff"))
Oracle = Callable[[int], int]  # token id -> unsigned hash under one prefix
Tops = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@pytest.fixture
def native(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFEWORK_OPS", "native")


def tops(rows: int, k: int, n: int, seed: int, pad: int = 0) -> Tops:
    """Distinct ids < n, float32 masses (the last `pad` of each row 0.0), float64 rest = 1 - their sum."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.rand(rows, n, generator=gen).argsort(dim=1)[:, :k].contiguous()
    probs = torch.rand(rows, k, generator=gen) / k
    probs[:, k - pad :] = 0.0
    return ids, probs, (1.0 - probs.double().sum(1)).clamp(min=0.0)


def words(rows: int, width: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(-(2**63), 2**63 - 1, (rows, width), generator=gen)


def cum(x: Oracle, ids: list[int], probs: list[float], rest: float, v: int) -> float:
    """The definition in plain Python: sort by (x, id), add the masses of keys <= v's in order, + rest * u."""
    s = 0.0
    for xt, t, p in sorted((x(t), t, p) for t, p in zip(ids, probs, strict=True)):
        if (xt, t) <= (x(v), v):
            s += p
    return s + rest * ((x(v) >> 11) * 2.0**-53)


def hasher(prefix: list[int]) -> Oracle:
    k0, k1 = KEY.tolist()
    return lambda t: to_uint64(siphash24_words_scalar(k0, k1, [*prefix, t]))


# ------------------------------------------------------------------------------- definition (oracle)


def test_reference_mask_and_table_match_the_scalar_oracle() -> None:
    n, tau = 37, 0.45
    prefix = words(3, 2, seed=1)
    ids, probs, rest = tops(3, 6, n, seed=2, pad=2)
    mask = ref.green_mask_reference(KEY, prefix, ids, probs, rest, n, tau)
    for b in range(3):
        x = hasher(prefix[b].tolist())
        want = [cum(x, ids[b].tolist(), probs[b].tolist(), float(rest[b]), v) > tau for v in range(n)]
        assert mask[b].tolist() == want
    tokens = torch.tensor([int(ids[0, 0]), 36, int(ids[2, 5])])  # a top, a non-top, a padding top
    table = ref.green_table_reference(KEY, prefix, tokens, ids, probs, rest, 5, tau)
    for t in range(3):
        for r in range(5):
            x = hasher([*prefix[t].tolist(), r])
            got = cum(x, ids[t].tolist(), probs[t].tolist(), float(rest[t]), int(tokens[t])) > tau
            assert bool(table[t, r]) == got


def test_top_token_counts_its_own_mass_and_rest_is_spread_by_u() -> None:
    prefix, n = words(1, 3, seed=3), 500
    x = ref.siphash24_suffix_reference(KEY, prefix, n)
    one = torch.tensor([[17]])
    # All mass on token 17: green exactly where the key is >= 17's (17 itself included), never elsewhere.
    mask = ref.green_mask_reference(
        KEY, prefix, one, torch.ones(1, 1), torch.zeros(1, dtype=torch.float64), n, 0.5
    )
    above = ref.ordered(x) >= ref.ordered(x[:, 17:18])
    assert torch.equal(mask, above) and bool(mask[0, 17]) and 0 < int(mask.sum()) < n
    # All mass in the rest: green exactly where u(x) > tau.
    rest_only = ref.green_mask_reference(KEY, prefix, one, torch.zeros(1, 1), torch.ones(1).double(), n, 0.3)
    assert torch.equal(rest_only, ref.uniform01(x) > 0.3)


def test_candidate_counts_reference_matches_loops() -> None:
    ctx, green = words(9, 2, seed=4), torch.rand(9, 7, generator=torch.Generator().manual_seed(5)) > 0.5
    slots = torch.tensor([0, 2, -1, 1, 0, 2, 2, -1, 1])
    got = ref.candidate_counts_reference(KEY, ctx, green, slots, 3, 40)
    want = torch.zeros(3, 40, dtype=torch.int64)
    for t in range(9):
        for m in range(40):
            if slots[t] >= 0:
                want[slots[t], m] += int(green[t, hasher(ctx[t].tolist())(m) % 7])
    assert torch.equal(got, want)


# ------------------------------------------------------------------- ties: order decided by the id


Case = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
# Masses whose float64 sum depends on the order: 0.5 + 2^-54 + 2^-54 is 0.5 one way, 0.5 + 2^-53 the other.
MASSES = torch.tensor([0.5, 0.25, 2.0**-54, 3 * 2.0**-55, 2.0**-55, 0.125])


def tie_case(seed: int) -> Case:
    """Hashes from a tiny set (ties everywhere, sign bit set too), R=12, K=6, M=40. Queries are the tops
    themselves (same hash) or ids outside the tops (above or below them), as real inputs always are."""
    gen = torch.Generator().manual_seed(seed)
    pool = torch.tensor([0, 5, 5, 9, -(2**63), -1, -5])
    x_top = pool[torch.randint(0, len(pool), (12, 6), generator=gen)]
    perm = torch.stack([torch.randperm(30, generator=gen) for _ in range(12)])
    probs = MASSES[torch.randint(0, 6, (12, 6), generator=gen)]
    probs[:, 5] = 0.0  # padding
    rest = torch.rand(12, generator=gen, dtype=torch.float64)
    x_query = pool[torch.randint(0, len(pool), (12, 40), generator=gen)]
    query_ids = perm.gather(1, torch.randint(6, 30, (12, 40), generator=gen))
    query_ids[:, :6], x_query[:, :6] = perm[:, :6], x_top
    return x_top, perm[:, :6].contiguous(), probs, rest, x_query, query_ids


def tie_cums(case: Case) -> list[list[float]]:
    x_top, ids, probs, rest, x_query, query_ids = case
    out = []
    for r in range(12):
        table = dict(zip(ids[r].tolist(), map(to_uint64, x_top[r].tolist()), strict=True))
        row = []
        for q, xq in zip(query_ids[r].tolist(), map(to_uint64, x_query[r].tolist()), strict=True):
            x = lambda t, q=q, xq=xq, table=table: xq if t == q else table[t]  # noqa: E731
            row.append(cum(x, ids[r].tolist(), probs[r].tolist(), float(rest[r]), q))
        out.append(row)
    return out


def sharp_taus(cums: list[list[float]]) -> list[float]:
    """tau = some queries' exact cum and the double just below it: any other bits flip one of the two."""
    picked = [cums[r][i] for r in range(0, 12, 3) for i in (0, 3, 7, 20)]
    return [t for c in picked for t in (c, math.nextafter(c, -math.inf))]


def test_reference_orders_ties_by_id_and_sums_in_key_order() -> None:
    case = tie_case(seed=6)
    cums = tie_cums(case)
    for tau in sharp_taus(cums):
        got = ref.green_from_hashes_reference(*case, tau)
        assert got.tolist() == [[c > tau for c in row] for row in cums], tau


@pytest.mark.parametrize("per_query", [False, True])
def test_native_order_matches_reference_on_ties(per_query: bool, native: None) -> None:
    case = tie_case(seed=7)
    for tau in sharp_taus(tie_cums(case)):
        want = ref.green_from_hashes_reference(*case, tau)
        assert torch.equal(green_from_hashes(*case, tau, per_query=per_query), want), tau


# --------------------------------------------------------------------------- native == reference


@pytest.mark.parametrize(
    ("rows", "n", "k", "pad"), [(2, 37, 1, 0), (3, 37, 9, 4), (8, 49152, 512, 100), (0, 37, 3, 0)]
)
def test_green_mask_and_bias_native_equal_reference(
    rows: int, n: int, k: int, pad: int, native: None
) -> None:
    prefix = words(rows, 3, seed=n + k)
    ids, probs, rest = tops(rows, k, n, seed=k, pad=pad)
    want = ref.green_mask_reference(KEY, prefix, ids, probs, rest, n, 0.5)
    assert torch.equal(green_mask(KEY, prefix, ids, probs, rest, n, 0.5), want)
    logits = torch.randn(rows, n, generator=torch.Generator().manual_seed(1))
    logits[:, ::7] = -0.0
    before = logits.clone()
    green_bias(KEY, prefix, ids, probs, rest, n, 0.5, logits, 1.7)
    expected = before.clone()
    ref.green_bias_reference(KEY, prefix, ids, probs, rest, n, 0.5, expected, 1.7)
    assert torch.equal(logits.view(torch.int32), expected.view(torch.int32))  # bits, -0.0 included
    assert torch.equal(logits[want], before[want] + torch.tensor(1.7, dtype=torch.float32))
    assert torch.equal(logits[~want].view(torch.int32), before[~want].view(torch.int32))


@pytest.mark.parametrize(("t", "p", "k", "pad"), [(5, 13, 1, 0), (40, 20, 64, 10), (0, 7, 4, 0)])
def test_green_table_native_equals_reference(t: int, p: int, k: int, pad: int, native: None) -> None:
    context = words(t, 2, seed=t)
    ids, probs, rest = tops(t, k, 1000, seed=p, pad=pad)
    tokens = torch.randint(0, 1000, (t,), generator=torch.Generator().manual_seed(2))
    tokens[::2] = ids[::2, 0]  # half the tokens are among the tops
    want = ref.green_table_reference(KEY, context, tokens, ids, probs, rest, p, 0.5)
    got = green_table(KEY, context, tokens, ids, probs, rest, p, 0.5)
    assert got.shape == (t, p) and torch.equal(got, want)
    if t:
        assert 0 < int(got.sum()) < t * p


@pytest.mark.parametrize(("t", "p", "j", "c"), [(50, 13, 3, 100), (300, 50, 4, 4096), (0, 5, 2, 8)])
def test_candidate_counts_native_equals_reference(t: int, p: int, j: int, c: int, native: None) -> None:
    gen = torch.Generator().manual_seed(t)
    ctx, green = words(t, 3, seed=c), torch.rand(t, p, generator=gen) > 0.5
    slots = torch.randint(-1, j, (t,), generator=gen)
    want = ref.candidate_counts_reference(KEY, ctx, green, slots, j, c)
    assert torch.equal(candidate_counts(KEY, ctx, green, slots, j, c), want)


def test_reference_mode_runs_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFEWORK_OPS", "reference")
    prefix, (ids, probs, rest) = words(2, 2, seed=8), tops(2, 4, 50, seed=8)
    want = ref.green_mask_reference(KEY, prefix, ids, probs, rest, 50, 0.5)
    assert torch.equal(green_mask(KEY, prefix, ids, probs, rest, 50, 0.5), want)


# ---------------------------------------------------------------------------------------- CUDA


def test_cuda_source_compiles_without_fma_contraction(tmp_path: Path) -> None:
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not installed")
    source = CSRC / "watermark" / "credid_cuda.cu"
    obj, ptx = tmp_path / "credid_cuda.o", tmp_path / "credid_cuda.ptx"
    for flag, out in (("-c", obj), ("-ptx", ptx)):
        cmd = [nvcc, "-std=c++17", "-arch=sm_80", flag, str(source), "-o", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    text = ptx.read_text()
    # cum = S + rest * u must stay a separate multiply and add (as on the CPU), or CUDA != CPU bit for bit.
    assert "mul.rn.f64" in text and "add.rn.f64" in text
    assert not re.search(r"\bfma\.rn\.f(32|64)\b", text)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_equals_cpu(native: None) -> None:
    def both(fn: Callable[..., torch.Tensor], *args: object, **kw: object) -> None:
        on_gpu = [a.cuda() if isinstance(a, torch.Tensor) else a for a in args]
        assert torch.equal(fn(*on_gpu, **kw).cpu(), fn(*args, **kw))

    prefix, (ids, probs, rest) = words(8, 3, seed=9), tops(8, 512, 49152, seed=9, pad=50)
    both(green_mask, KEY, prefix, ids, probs, rest, 49152, 0.5)
    logits = torch.randn(8, 49152)
    gpu_logits = logits.cuda()
    green_bias(KEY.cuda(), prefix.cuda(), ids.cuda(), probs.cuda(), rest.cuda(), 49152, 0.5, gpu_logits, 2.0)
    green_bias(KEY, prefix, ids, probs, rest, 49152, 0.5, logits, 2.0)
    assert torch.equal(gpu_logits.cpu().view(torch.int32), logits.view(torch.int32))
    context, (tids, tprobs, trest) = words(200, 2, seed=10), tops(200, 256, 49152, seed=10, pad=20)
    tokens = tids[:, 0].clone()
    tokens[1::2] = torch.arange(100)  # half the tokens (mostly) outside the tops
    both(green_table, KEY, context, tokens, tids, tprobs, trest, 50, 0.5)
    green = torch.rand(200, 50) > 0.5
    both(candidate_counts, KEY, context, green, torch.randint(-1, 4, (200,)), 4, 4096)
    for per_query in (False, True):
        both(green_from_hashes, *tie_case(seed=11), 0.4, per_query=per_query)


# ---------------------------------------------------------------------------------- validation

P2, IDS, PROBS = torch.zeros(2, 3, dtype=torch.int64), torch.tensor([[0, 1], [2, 3]]), torch.ones(2, 2) / 4
REST = torch.full((2,), 0.5, dtype=torch.float64)
MASK: dict[str, object] = dict(key=KEY, prefix=P2, top_ids=IDS, top_probs=PROBS, rest=REST, n=10, tau=0.5)
BIAS: dict[str, object] = {**MASK, "logits": torch.zeros(2, 10), "delta": 1.0}
TABLE: dict[str, object] = {**MASK, "context": P2, "tokens": torch.tensor([4, 5]), "P": 5}
del TABLE["prefix"], TABLE["n"]
COUNTS: dict[str, object] = dict(key=KEY, index_context=P2, green=torch.ones(2, 5, dtype=torch.bool))
COUNTS.update(slots=torch.tensor([0, -1]), n_slots=2, n_candidates=8)

BAD: list[tuple[Callable[..., object], dict[str, object], dict[str, object], str]] = [
    (green_mask, MASK, {"prefix": P2.int()}, "prefix must be torch.int64"),
    (green_mask, MASK, {"prefix": P2[0]}, "2-D int64 tensor"),
    (green_mask, MASK, {"prefix": torch.zeros(3, 2, dtype=torch.int64).t()}, "contiguous"),
    (green_mask, MASK, {"key": KEY[:1]}, r"shape \(2,\)"),
    (green_mask, MASK, {"prefix": P2.to("meta")}, "move all inputs to one device"),
    (green_mask, MASK, {"top_ids": torch.tensor([[1, 1], [2, 3]])}, "distinct"),
    (green_mask, MASK, {"top_ids": torch.tensor([[0, 10], [2, 3]])}, "< n=10"),
    (green_mask, MASK, {"top_ids": torch.tensor([[0, -1], [2, 3]])}, ">= 0"),
    (green_mask, MASK, {"top_ids": torch.zeros(2, 0, dtype=torch.int64)}, "K >= 1"),
    (green_mask, MASK, {"top_probs": PROBS.double()}, "top_probs must be torch.float32"),
    (green_mask, MASK, {"top_probs": torch.tensor([[0.1, float("nan")], [0.1, 0.1]])}, "finite and >= 0"),
    (green_mask, MASK, {"top_probs": -PROBS}, "finite and >= 0"),
    (green_mask, MASK, {"rest": REST[:1]}, r"rest must have shape \(2,\)"),
    (green_mask, MASK, {"rest": torch.full((2,), float("inf"), dtype=torch.float64)}, "rest must be finite"),
    (green_mask, MASK, {"n": 0}, "must be an int >= 1"),
    (green_mask, MASK, {"n": True}, "must be an int >= 1"),
    (green_mask, MASK, {"tau": float("nan")}, "tau must be a finite float"),
    (green_bias, BIAS, {"logits": torch.zeros(2, 11)}, r"logits must have shape \(2, 10\)"),
    (green_bias, BIAS, {"logits": torch.zeros(10, 2).t()}, "logits must be contiguous"),
    (green_bias, BIAS, {"logits": torch.zeros(2, 10, dtype=torch.float64)}, "logits must be torch.float32"),
    (green_bias, BIAS, {"delta": float("inf")}, "delta must be a finite float"),
    (green_bias, BIAS, {"delta": 1e39}, "overflows float32"),
    (green_table, TABLE, {"tokens": torch.tensor([4, -1])}, "tokens must be >= 0"),
    (green_table, TABLE, {"tokens": torch.tensor([4])}, r"tokens must have shape \(2,\)"),
    (green_table, TABLE, {"P": 0}, "P .* must be an int >= 1"),
    (green_table, TABLE, {"top_ids": torch.tensor([[0, -3], [2, 3]])}, "top_ids must be >= 0"),
    (candidate_counts, COUNTS, {"slots": torch.tensor([0, 2])}, r"slots must lie in \[-1, 2\)"),
    (candidate_counts, COUNTS, {"slots": torch.tensor([-2, 0])}, r"slots must lie in \[-1, 2\)"),
    (candidate_counts, COUNTS, {"n_candidates": 4097}, r"in \[1, 4096\]"),
    (candidate_counts, COUNTS, {"n_candidates": 0}, r"in \[1, 4096\]"),
    (candidate_counts, COUNTS, {"n_slots": 0}, "n_slots must be an int >= 1"),
    (candidate_counts, COUNTS, {"green": torch.ones(2, 5)}, "green must be torch.bool"),
    (candidate_counts, COUNTS, {"green": torch.ones(2, 0, dtype=torch.bool)}, "P >= 1"),
]


@pytest.mark.parametrize(("fn", "base", "change", "message"), BAD)
def test_bad_inputs_are_rejected(
    fn: Callable[..., object], base: dict[str, object], change: dict[str, object], message: str
) -> None:
    with pytest.raises(OpInputError, match=message):
        fn(**{**base, **change})
