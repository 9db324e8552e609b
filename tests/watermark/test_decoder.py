"""The calibrated decoder: exact tails, Fisher's combination, p-values that hold on unwatermarked input."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import replace

import pytest
import torch

from safework.watermark.decoder import (
    Evidence,
    decode,
    fisher_combine,
    grouped_null_pmfs,
    known_payload_p_value,
    poisson_binomial_pmf,
    upper_tail,
)
from safework.watermark.metrics import ks_uniform
from safework.watermark.payload import SymbolLayout


def test_poisson_binomial_matches_brute_force() -> None:
    rates = [0.1, 0.35, 0.5, 0.9]
    pmf = poisson_binomial_pmf(torch.tensor(rates, dtype=torch.float64))
    brute = [0.0] * 5
    for outcome in itertools.product([0, 1], repeat=4):
        brute[sum(outcome)] += math.prod(r if o else 1 - r for r, o in zip(rates, outcome, strict=True))
    assert pmf.tolist() == pytest.approx(brute, abs=1e-15)
    assert upper_tail(pmf, 0) == 1.0 and upper_tail(pmf, 5) == 0.0
    assert upper_tail(pmf, 3) == pytest.approx(brute[3] + brute[4])


def test_fisher_combination_known_values() -> None:
    assert fisher_combine([0.5]) == pytest.approx(0.5)
    # two p-values: sf = e^{-x/2} (1 + x/2) with x = -2 ln(p1 p2)
    p1, p2 = 0.01, 0.2
    half = -math.log(p1 * p2)
    assert fisher_combine([p1, p2]) == pytest.approx(math.exp(-half) * (1 + half))
    assert fisher_combine([]) == 1.0
    assert 0 < fisher_combine([1e-150, 1e-150]) < 1e-290


def _null_evidence(rng: random.Random, layout: SymbolLayout, t: int = 120) -> Evidence:
    null = torch.tensor([rng.uniform(0.05, 0.6) for _ in range(t)], dtype=torch.float64)
    slots = torch.tensor([rng.randrange(layout.slots) for _ in range(t)])
    hits = (
        torch.rand(t, layout.candidates, generator=torch.Generator().manual_seed(rng.randrange(2**31)))
        < null[:, None]
    )
    counts = torch.zeros(layout.slots, layout.candidates, dtype=torch.int64)
    counts.index_add_(0, slots, hits.to(torch.int64))
    return Evidence(torch.ones(t, dtype=torch.bool), slots, null, counts)


def test_p_values_are_calibrated_on_null_evidence() -> None:
    """Hits drawn at the null rates: detection p-values are conservative, known-payload ones uniform."""
    rng = random.Random(7)
    layout = SymbolLayout(16, 4)
    detection, known = [], []
    for _ in range(400):
        evidence = _null_evidence(rng, layout)
        detection.append(decode(evidence, layout).p_value)
        known.append(known_payload_p_value(evidence, layout, [3, 1, 4, 1], [rng.random() for _ in range(4)]))
    assert sum(p < 0.05 for p in detection) <= 0.05 * len(detection)
    assert sum(p < 0.1 for p in known) == pytest.approx(0.1 * len(known), abs=0.05 * len(known))
    assert ks_uniform(known)[1] > 0.01


def test_strong_evidence_decodes_the_payload_with_confidence() -> None:
    layout = SymbolLayout(16, 4)
    symbols = layout.encode(__import__("safework.core.types", fromlist=["x"]).WatermarkPayload(0xBEEF, 16))
    t = 160
    slots = torch.arange(t) % layout.slots
    null = torch.full((t,), 0.25, dtype=torch.float64)
    counts = torch.full((layout.slots, layout.candidates), 10, dtype=torch.int64)
    for j, s in enumerate(symbols):
        counts[j, s] = 32  # 32 of 40 positions hit the right symbol
    result = decode(Evidence(torch.ones(t, dtype=torch.bool), slots, null, counts), layout)
    assert result.detected and result.payload is not None and result.payload.value == 0xBEEF
    assert result.p_value < 1e-10 and result.z > 5
    assert min(result.bit_confidence) > 0.99 and len(result.bit_confidence) == 16
    assert result.to_json()["payload"] == "beef"


def test_nothing_scored_is_not_detected() -> None:
    layout = SymbolLayout(8, 4)
    empty = Evidence(
        torch.zeros(10, dtype=torch.bool),
        torch.zeros(10, dtype=torch.int64),
        torch.full((10,), 0.5, dtype=torch.float64),
        torch.zeros(2, 16, dtype=torch.int64),
    )
    result = decode(empty, layout)
    assert not result.detected and result.payload is None and result.p_value == 1.0


def test_grouped_null_matches_enumeration_over_every_draw() -> None:
    """Two slots, groups of 1-3 positions sharing a draw among R = 3: the pmf is the exact law."""
    draws = torch.tensor(
        [[1, 0, 1], [1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 1], [1, 1, 1]], dtype=torch.bool
    )  # rows are positions
    groups = torch.tensor([0, 0, 1, 2, 2, 2])
    slots = torch.tensor([0, 0, 0, 1, 1, 1])
    pmfs = grouped_null_pmfs(draws, groups, slots, 2)
    expected = [torch.zeros(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)]
    for r0, r1, r2 in itertools.product(range(3), repeat=3):
        slot0 = int(draws[0, r0]) + int(draws[1, r0]) + int(draws[2, r1])
        slot1 = int(draws[3, r2]) + int(draws[4, r2]) + int(draws[5, r2])
        expected[0][slot0] += 1 / 27
        expected[1][slot1] += 1 / 27
    for got, want in zip(pmfs, expected, strict=True):
        assert torch.allclose(got, want[: got.shape[0]], atol=1e-12)
        assert float(got.sum()) == pytest.approx(1.0)


def test_grouped_null_of_singletons_is_the_poisson_binomial() -> None:
    rng = torch.Generator().manual_seed(3)
    draws = torch.rand(12, 50, generator=rng) < 0.3
    pmf = grouped_null_pmfs(draws, torch.arange(12), torch.zeros(12, dtype=torch.int64), 1)[0]
    rates = draws.to(torch.float64).mean(dim=1)
    assert torch.allclose(pmf, poisson_binomial_pmf(rates), atol=1e-12)


def test_shared_draws_need_the_grouped_null_to_stay_calibrated() -> None:
    """Positions after one context hit together (one permutation for all of them): treating them as
    independent makes known-payload p-values non-uniform, the grouped null keeps them exact."""
    rng = random.Random(11)
    layout = SymbolLayout(4, 4)
    n_groups, size, draws_per = 12, 4, 50
    grouped, independent = [], []
    for _ in range(400):
        rows, groups = [], []
        for g in range(n_groups):
            # One "tail starts early" set of permutations shared by the group's tokens.
            early = set(rng.sample(range(draws_per), rng.randint(5, 20)))
            for _ in range(size):
                rows.append([r in early or rng.random() < 0.05 for r in range(draws_per)])
                groups.append(g)
        draws = torch.tensor(rows, dtype=torch.bool)
        group_ids = torch.tensor(groups)
        picked = torch.tensor([rng.randrange(draws_per) for _ in range(n_groups)])
        hits = int(draws[torch.arange(len(rows)), picked[group_ids]].sum())
        t = len(rows)
        counts = torch.zeros(1, layout.candidates, dtype=torch.int64)
        counts[0, 5] = hits
        base = Evidence(
            torch.ones(t, dtype=torch.bool),
            torch.zeros(t, dtype=torch.int64),
            draws.to(torch.float64).mean(dim=1),
            counts,
        )
        exact = replace(base, null_pmfs=grouped_null_pmfs(draws, group_ids, base.slots, 1))
        u = [rng.random()]
        grouped.append(known_payload_p_value(exact, layout, [5], u))
        independent.append(known_payload_p_value(base, layout, [5], u))
    assert ks_uniform(grouped)[1] > 0.01
    assert ks_uniform(independent)[1] < 1e-4
