"""From per-position evidence to a payload with calibrated statistics (the fix of credid.md §7.3).

Every scheme reduces a text to the same evidence: which positions are scored, which slot each one carries,
its null hit rate (the chance a wrong or absent symbol scores a hit there) and, per slot, how many scored
positions hit for each candidate symbol. Under "no watermark with this key" the hits of one candidate are
Bernoulli draws with those null rates. When they are independent, a slot's count has a Poisson-binomial
distribution and its tail is an exact p-value. When positions share one keyed draw (credid: every position
after the same context uses the same permutation, so their hits rise and fall together) the scheme passes
the exact null distribution of each slot's count instead (:func:`grouped_null_pmfs`); treating such
positions as independent understates the variance and makes p-values on human text non-uniform at both
tails. The decoder then

* takes the best candidate per slot and corrects its tail for the C candidates it was chosen from
  (Bonferroni: valid whatever the candidates' dependence);
* combines the J slots with Fisher's method (slots use disjoint positions, so their p-values are
  independent; Bonferroni-corrected inputs only make Fisher conservative);
* reports the payload only when the combined p-value is below ``alpha`` (and the CRC, if any, holds).

:func:`known_payload_p_value` is the test for one given payload (a TTP checking one seed): no candidate
search, randomised at ties so that it is exactly uniform on unwatermarked text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from safework.core.types import WatermarkPayload
from safework.watermark.payload import SymbolLayout

DEFAULT_ALPHA = 1e-3
_TINY = 1e-300


@dataclass(frozen=True)
class Evidence:
    """Per-position evidence of one text under one key (T positions, J slots, C candidates)."""

    scored: torch.Tensor  # (T,) bool: the position counts
    slots: torch.Tensor  # (T,) int64 slot of each position
    null: torch.Tensor  # (T,) float64 null hit rate
    counts: torch.Tensor  # (J, C) int64 hits among scored positions
    # Exact null pmf of each slot's count when positions are not independent (None: Poisson-binomial).
    null_pmfs: tuple[torch.Tensor, ...] | None = None

    @property
    def scored_tokens(self) -> int:
        return int(self.scored.sum())

    def slot_pmf(self, j: int) -> torch.Tensor:
        """Null distribution of slot j's hit count for any one candidate: P(N = k), k = 0..n."""
        if self.null_pmfs is not None:
            return self.null_pmfs[j]
        return poisson_binomial_pmf(_slot_rates(self, j))


@dataclass(frozen=True)
class SlotResult:
    symbol: int
    hits: int
    scored: int
    expected: float
    z: float
    p_value: float

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("symbol", "hits", "scored", "expected", "z", "p_value")}


@dataclass(frozen=True)
class Extraction:
    """What a text carries: the payload (None when not detected), its evidence and per-bit confidence.

    ``decoded`` is the best payload whether or not it is significant: bit accuracy is measured on it.
    """

    payload: WatermarkPayload | None
    decoded: WatermarkPayload
    detected: bool
    p_value: float
    z: float
    bit_confidence: list[float]
    symbols: list[int]
    crc_ok: bool | None
    scored_tokens: int
    total_tokens: int
    slots: list[SlotResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "payload": None if self.payload is None else self.payload.to_hex(),
            "decoded": self.decoded.to_hex(),
            "detected": self.detected,
            "p_value": self.p_value,
            "z": self.z,
            "bit_confidence": [round(c, 6) for c in self.bit_confidence],
            "crc_ok": self.crc_ok,
            "scored_tokens": self.scored_tokens,
            "total_tokens": self.total_tokens,
            "slots": [s.to_json() for s in self.slots],
        }


def poisson_binomial_pmf(rates: torch.Tensor) -> torch.Tensor:
    """P(N = k) for k = 0..n, N a sum of independent Bernoulli(rates) (float64 dynamic programme)."""
    pmf = torch.ones(1, dtype=torch.float64)
    for rate in rates.to(torch.float64).tolist():
        nxt = torch.zeros(pmf.shape[0] + 1, dtype=torch.float64)
        nxt[:-1] += pmf * (1.0 - rate)
        nxt[1:] += pmf * rate
        pmf = nxt
    return pmf


def grouped_null_pmfs(
    draws: torch.Tensor, groups: torch.Tensor, slots: torch.Tensor, n_slots: int
) -> tuple[torch.Tensor, ...]:
    """Exact null pmf of each slot's hit count when positions in a group share one uniform draw.

    ``draws`` (N, R) bool: whether scored position i hits if the group's draw is r (credid: r is the
    permutation a keyed hash picks for (context, candidate), uniform over R = P and independent across
    contexts); ``groups`` (N,) group ids; ``slots`` (N,) the slot of each position (constant in a group).
    A group's count is sum_i draws[i, r] for a uniform r: its pmf is the histogram over r. Groups are
    independent, so a slot's pmf is the convolution of its groups' pmfs. With groups of one position this
    is the Poisson-binomial of the per-position rates.
    """
    n_draws = draws.shape[1]
    if draws.shape[0] == 0:
        return tuple(torch.ones(1, dtype=torch.float64) for _ in range(n_slots))
    ids, inverse = torch.unique(groups, return_inverse=True)
    totals = torch.zeros(ids.shape[0], n_draws, dtype=torch.int64)
    totals.index_add_(0, inverse, draws.to(torch.int64))
    sizes = torch.bincount(inverse, minlength=ids.shape[0]).tolist()
    group_slot = torch.zeros(ids.shape[0], dtype=torch.int64).scatter_(0, inverse, slots.to(torch.int64))
    # Histogram of every group's count over the R draws at once: row g, column c = #{r : count = c}.
    width = max(sizes) + 1
    flat = (torch.arange(ids.shape[0]).reshape(-1, 1) * width + totals).flatten()
    histograms = (torch.bincount(flat, minlength=ids.shape[0] * width).reshape(-1, width) / n_draws).numpy()
    pmfs = [np.ones(1) for _ in range(n_slots)]
    for g, j in enumerate(group_slot.tolist()):
        pmfs[j] = np.convolve(pmfs[j], histograms[g, : sizes[g] + 1])
    return tuple(torch.from_numpy(pmf) for pmf in pmfs)


def pmf_moments(pmf: torch.Tensor) -> tuple[float, float]:
    """(mean, variance) of a count with this pmf."""
    k = torch.arange(pmf.shape[0], dtype=torch.float64)
    mean = float((k * pmf).sum())
    return mean, max(0.0, float((k * k * pmf).sum()) - mean * mean)


def upper_tail(pmf: torch.Tensor, k: int) -> float:
    """P(N >= k), summed from the far end so tiny tails keep their precision."""
    if k <= 0:
        return 1.0
    if k >= pmf.shape[0]:
        return 0.0
    return float(torch.flip(pmf[k:], [0]).sum().clamp(max=1.0))


def fisher_combine(p_values: list[float]) -> float:
    """Fisher's combined p-value of independent p-values (chi-square with 2n dof, closed form)."""
    if not p_values:
        return 1.0
    half = -sum(math.log(max(p, _TINY)) for p in p_values)  # X / 2
    # sf(X; 2n) = exp(-X/2) * sum_{i<n} (X/2)^i / i!, in logs to survive p-values near 1e-300.
    log_terms = [
        i * math.log(half) - math.lgamma(i + 1) - half if half > 0 else 0.0 for i in range(len(p_values))
    ]
    top = max(log_terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in log_terms))


def _slot_rates(evidence: Evidence, j: int) -> torch.Tensor:
    mask = evidence.scored & (evidence.slots == j)
    return evidence.null[mask]


def _bit_confidence(
    layout: SymbolLayout, counts: torch.Tensor, rates: list[torch.Tensor], symbols: list[int]
) -> list[float]:
    """Approximate posterior that each decoded payload bit is right.

    Per slot, candidate m's likelihood relative to the null is exp(beta * hits_m), with beta the log odds
    ratio between the winner's observed hit rate and the null rate: a one-parameter Bayes factor, uniform
    prior over candidates. Marginalised per bit. A confidence, not a p-value.
    """
    posteriors: list[torch.Tensor] = []
    for j, slot_rates in enumerate(rates):
        n = slot_rates.numel()
        slot_counts = counts[j].to(torch.float64)
        if n == 0:
            posteriors.append(torch.full_like(slot_counts, 1.0 / slot_counts.numel()))
            continue
        null = float(slot_rates.mean())
        won = float(slot_counts.max()) / n
        eps = 0.5 / n
        high = min(max(won, null + eps), 1.0 - eps)
        low = min(max(null, eps), 1.0 - eps)
        beta = max(0.0, math.log(high / (1 - high)) - math.log(low / (1 - low)))
        posteriors.append(torch.softmax(beta * slot_counts, dim=0))
    confidence = []
    for slot, bit in layout.bit_slots():
        shift = layout.symbol_bits - 1 - bit
        wanted = (symbols[slot] >> shift) & 1
        members = (torch.arange(layout.candidates) >> shift) & 1 == wanted
        confidence.append(float(posteriors[slot][members].sum()))
    return confidence


def decode(evidence: Evidence, layout: SymbolLayout, *, alpha: float = DEFAULT_ALPHA) -> Extraction:
    """Decode the payload and its calibrated presence p-value from ``evidence``."""
    total = int(evidence.slots.shape[0])
    rates = [_slot_rates(evidence, j) for j in range(layout.slots)]
    results: list[SlotResult] = []
    symbols: list[int] = []
    hits_sum = mean_sum = var_sum = 0.0
    corrected: list[float] = []
    for j, slot_rates in enumerate(rates):
        slot_counts = evidence.counts[j]
        symbol = int(torch.argmax(slot_counts))  # first maximum: deterministic tie-break
        hits = int(slot_counts[symbol])
        pmf = evidence.slot_pmf(j)
        mean, var = pmf_moments(pmf)
        z = (hits - mean) / math.sqrt(var) if var > 0 else 0.0
        if slot_rates.numel():
            tail = upper_tail(pmf, hits)
            p = min(1.0, tail * layout.candidates)
            corrected.append(p)
        else:
            p = 1.0
        results.append(SlotResult(symbol, hits, int(slot_rates.numel()), mean, z, p))
        symbols.append(symbol)
        hits_sum, mean_sum, var_sum = hits_sum + hits, mean_sum + mean, var_sum + var
    p_value = fisher_combine(corrected)
    z_all = (hits_sum - mean_sum) / math.sqrt(var_sum) if var_sum > 0 else 0.0
    decoded, crc_ok = layout.decode(symbols) if layout.bits else (WatermarkPayload(0, 0), None)
    detected = p_value <= alpha
    payload = decoded if detected and crc_ok is not False else None
    confidence = _bit_confidence(layout, evidence.counts, rates, symbols) if layout.bits else []
    return Extraction(
        payload,
        decoded,
        detected,
        p_value,
        z_all,
        confidence,
        symbols,
        crc_ok,
        evidence.scored_tokens,
        total,
        results,
    )


def known_payload_p_value(
    evidence: Evidence, layout: SymbolLayout, symbols: list[int], uniforms: list[float]
) -> float:
    """p-value of "this text carries exactly these symbols", exactly uniform on unwatermarked text.

    Per slot the randomised tail P(N > k) + U * P(N = k) (``uniforms``: one keyed draw per slot) removes the
    discreteness of the count; Fisher then combines independent uniforms.
    """
    p_values = []
    for j in range(layout.slots):
        if _slot_rates(evidence, j).numel() == 0:
            continue
        pmf = evidence.slot_pmf(j)
        k = int(evidence.counts[j, symbols[j]])
        p_values.append(upper_tail(pmf, k + 1) + uniforms[j] * float(pmf[k]))
    return fisher_combine(p_values)
