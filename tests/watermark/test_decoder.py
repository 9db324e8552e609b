"""The calibrated decoder: exact tails, Fisher's combination, p-values that hold on unwatermarked input."""

from __future__ import annotations

import itertools
import math
import random

import pytest
import torch

from safework.watermark.decoder import (
    Evidence,
    decode,
    fisher_combine,
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
