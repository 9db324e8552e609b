"""Advantage estimators against hand-computed numbers (the arithmetic is written out next to each case)."""

from __future__ import annotations

import math

import pytest
import torch

from safework.core.errors import ConfigError
from safework.rl.advantages import (
    ESTIMATORS,
    AdvantageBatch,
    cale,
    call_estimator,
    cpgd,
    dr_grpo,
    grpo,
)
from safework.verifiers.fused import group_advantages_reference


def batch(rewards: list[float], groups: list[int], lengths: list[int] | None = None) -> AdvantageBatch:
    lens = lengths if lengths is not None else [1] * len(rewards)
    return AdvantageBatch(torch.tensor(rewards), torch.tensor(groups), torch.tensor(lens))


def close(actual: torch.Tensor, expected: list[float]) -> None:
    assert actual.dtype == torch.float32
    torch.testing.assert_close(actual, torch.tensor(expected), rtol=0, atol=1e-6)


# Shuffled ids: group 5 = items 0, 2, 5 (rewards 1, 0, 2); group 2 = items 1, 3, 6 (all 3: flat);
# group 9 = item 4 alone (flat).
MIXED = ([1.0, 3.0, 0.0, 3.0, 4.0, 2.0, 3.0], [5, 2, 5, 2, 9, 5, 2])


def test_batch_group_bookkeeping() -> None:
    b = batch(*MIXED)
    assert b.group_count() == 3
    assert b.zero_variance_group_count() == 2
    assert b.zero_variance().tolist() == [False, True, False, True, True, False, True]


def test_grpo_is_the_group_z_score() -> None:
    # group 5: mean (1+0+2)/3 = 1, deviations 0, -1, +1, sample var (0+1+1)/(3-1) = 1, std 1.
    b = batch(*MIXED)
    close(grpo(b, eps=0.0), [0.0, 0.0, -1.0, 0.0, 0.0, 1.0, 0.0])
    close(grpo(b), [0.0, 0.0, -1 / (1 + 1e-6), 0.0, 0.0, 1 / (1 + 1e-6), 0.0])
    # population std: var (0+1+1)/3 = 2/3, so A = -1/sqrt(2/3) = -1.2247449 for item 2.
    s = math.sqrt(2 / 3)
    close(grpo(b, eps=0.0, unbiased=False), [0.0, 0.0, -1 / s, 0.0, 0.0, 1 / s, 0.0])
    torch.testing.assert_close(grpo(b), group_advantages_reference(b.rewards, b.groups, 1e-6, True))


def test_dr_grpo_subtracts_the_group_mean_only() -> None:
    # group 5 mean 1 -> 0, -1, +1; a group 7 of (0, 4): mean 2 -> -2, +2 (no std division).
    b = batch([1.0, 0.0, 0.0, 2.0, 4.0], [5, 5, 7, 5, 7])
    close(dr_grpo(b), [0.0, -1.0, -2.0, 1.0, 2.0])


def test_cpgd_weights_by_hand() -> None:
    # 4 groups: A = (1, 3) mean 2, sample std sqrt(2); B = (0, 1) mean 0.5, std sqrt(0.5); C, D flat.
    rewards = [1.0, 3.0, 0.0, 1.0, 5.0, 5.0, 2.0]
    groups = [0, 0, 1, 1, 2, 2, 3]
    b = batch(rewards, groups)
    close(cpgd(b, weight="equal"), [-1.0, 1.0, -0.5, 0.5, 0.0, 0.0, 0.0])
    r2, rh = math.sqrt(2), math.sqrt(0.5)
    close(cpgd(b, weight="std", eps=0.0), [-1 / r2, 1 / r2, -0.5 / rh, 0.5 / rh, 0.0, 0.0, 0.0])
    torch.testing.assert_close(cpgd(b), grpo(b))  # std weight with eps: GRPO's z-score
    # clip_filter: omega = min(cap 3, 4 groups / 2 informative) = 2, the same for every group.
    close(cpgd(b, weight="clip_filter"), [-2.0, 2.0, -1.0, 1.0, 0.0, 0.0, 0.0])
    # One informative group of four: omega = min(3, 4/1) = 3 (the cap binds); min(10, 4) = 4.
    b1 = batch([1.0, 3.0, 1.0, 1.0, 5.0, 5.0, 2.0], groups)
    close(cpgd(b1, weight="clip_filter"), [-3.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    close(cpgd(b1, weight="clip_filter", cap=10.0), [-4.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    # No informative group: all zero, no division by zero.
    close(cpgd(batch([1.0, 1.0, 2.0], [0, 0, 1]), weight="clip_filter"), [0.0, 0.0, 0.0])


def test_cale_hand_example_alpha_09_mu_1() -> None:
    # lengths 10, 30, 20, 40 -> shorter half G- = items 0, 2 (rewards 1, 1; mean 1),
    # longer half G+ = items 1, 3 (rewards 0, 0.5; mean 0.25).
    b = batch([1.0, 0.0, 1.0, 0.5], [3, 3, 3, 3], [10, 30, 20, 40])
    # G-: R - 0.9 * 0.25 = 1 - 0.225 = 0.775.  G+: 0.9 * R - 1 -> item 1: -1, item 3: 0.45 - 1 = -0.55.
    close(cale(b), [0.775, -1.0, 0.775, -0.55])
    # beta = 0.1 lowers G- by 0.1 and raises G+ by 0.1.
    close(cale(b, beta=0.1), [0.675, -0.9, 0.675, -0.45])
    # mu = 0: intra only, R - own half mean: 1 - 1, 0 - 0.25, 1 - 1, 0.5 - 0.25.
    close(cale(b, mu=0.0), [0.0, -0.25, 0.0, 0.25])
    # mu = 0.3: 0.3 * inter + 0.7 * intra.
    close(cale(b, mu=0.3), [0.2325, -0.475, 0.2325, 0.01])


def test_cale_reduces_to_dr_grpo_on_even_groups() -> None:
    # Three groups of 4, 8 and 2, interleaved, with length ties (broken by original index). Rewards are
    # dyadic and halves have 1, 2 or 4 items, so every mean is exact and the two agree bit for bit:
    # 0.5 * (R - m+) + 0.5 * (R - m-) = R - (m+ + m-) / 2 = R - m for equal halves.
    groups = [4, 1, 4, 8, 1, 1, 4, 1, 8, 1, 4, 1, 1, 1]
    lengths = [7, 3, 7, 5, 3, 9, 2, 3, 5, 1, 7, 3, 0, 3]
    rewards = [1.0, 0.5, 0.0, 0.25, 1.0, 0.75, 0.5, 0.0, 1.0, 0.25, 1.0, 0.5, 0.0, 1.0]
    b = batch(rewards, groups, lengths)
    assert torch.equal(cale(b, mu=0.5, alpha=1.0, beta=0.0), dr_grpo(b))
    # The same on random rewards, up to float rounding.
    gen = torch.Generator().manual_seed(0)
    rb = AdvantageBatch(torch.rand(14, generator=gen), b.groups, b.lengths)
    torch.testing.assert_close(cale(rb, mu=0.5, alpha=1.0), dr_grpo(rb), rtol=0, atol=1e-6)


def test_cale_length_ties_keep_original_order() -> None:
    # All lengths equal: G- = first two items by index (rewards 1, 0; mean 0.5), G+ = last two (0, 0; 0).
    b = batch([1.0, 0.0, 0.0, 0.0], [0, 0, 0, 0], [5, 5, 5, 5])
    # alpha = 1, mu = 1: G-: R - 0 -> 1, 0;  G+: R - 0.5 -> -0.5, -0.5.
    close(cale(b, alpha=1.0), [1.0, 0.0, -0.5, -0.5])


def test_cale_odd_group_median_rule() -> None:
    # lengths 5, 1, 3: item 1 is G- (reward 0), item 0 is G+ (reward 1), item 2 the median (reward 1).
    b = batch([1.0, 0.0, 1.0], [0, 0, 0], [5, 1, 3])
    # mu = 1, alpha = 0.9: G-: 0 - 0.9 * 1 = -0.9;  G+: 0.9 * 1 - 0 = 0.9;
    # median: R - mean(others) = 1 - (1 + 0) / 2 = 0.5 (untilted, no beta).
    close(cale(b), [0.9, -0.9, 0.5])
    close(cale(b, beta=0.2), [1.1, -1.1, 0.5])
    # mu = 0.5: halves of one item have intra 0, and the median's intra is 0 by rule: half of the above.
    close(cale(b, mu=0.5), [0.45, -0.45, 0.25])
    # A group of 5 (lengths 1..5 shuffled): G- = {len 1, 2}, median = len 3, G+ = {len 4, 5}.
    b5 = batch([0.0, 1.0, 1.0, 0.0, 1.0], [2] * 5, [3, 1, 5, 2, 4])
    # G- rewards (len1: 1, len2: 0) mean 0.5; G+ (len4: 1, len5: 1) mean 1; median (len3) reward 0.
    # alpha = 1, mu = 1: G-: R - 1 -> 0, -1; G+: R - 0.5 -> 0.5, 0.5; median: 0 - (1+0+1+1)/4 = -0.75.
    close(cale(b5, alpha=1.0), [-0.75, 0.0, 0.5, -1.0, 0.5])


def _cale_loop(
    rewards: list[float], groups: list[int], lengths: list[int], mu: float, alpha: float
) -> list[float]:
    """Straightforward per-group CALE, as the docstring states it, to check the vectorised version."""
    out = [0.0] * len(rewards)
    for g in set(groups):
        idx = sorted((i for i in range(len(rewards)) if groups[i] == g), key=lambda i: (lengths[i], i))
        rs = [rewards[i] for i in idx]
        if len(set(rs)) == 1:
            continue
        h = len(idx) // 2
        short, long_ = idx[:h], idx[len(idx) - h :]
        ms = sum(rewards[i] for i in short) / h
        ml = sum(rewards[i] for i in long_) / h
        for i in idx:
            r = rewards[i]
            if i in short:
                out[i] = mu * (r - alpha * ml) + (1 - mu) * (r - ms)
            elif i in long_:
                out[i] = mu * (alpha * r - ms) + (1 - mu) * (r - ml)
            else:
                out[i] = mu * (r - (sum(rs) - r) / (len(idx) - 1))
    return out


def test_cale_vectorised_matches_per_group_loop() -> None:
    gen = torch.Generator().manual_seed(1)
    groups = torch.randint(0, 9, (80,), generator=gen)
    lengths = torch.randint(0, 6, (80,), generator=gen)  # many ties
    rewards = torch.randint(0, 3, (80,), generator=gen).float() / 2
    b = AdvantageBatch(rewards, groups, lengths)
    expected = _cale_loop(rewards.tolist(), groups.tolist(), lengths.tolist(), 0.7, 0.9)
    torch.testing.assert_close(cale(b, mu=0.7), torch.tensor(expected), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_zero_variance_groups_get_exactly_zero(name: str) -> None:
    # Group 0: three rewards of 0.01 (CALE with alpha 0.9 would give 0.01 - 0.9*0.01 = 0.001 without the
    # rule); group 1 a single item; group 2 two equal rewards; group 3 informative, so others are nonzero.
    b = batch([0.01, 0.01, 0.01, 7.0, 1.0, 1.0, 0.0, 1.0], [0, 0, 0, 1, 2, 2, 3, 3], [1, 2, 3, 4, 1, 2, 1, 2])
    out = ESTIMATORS[name](b)
    assert out.dtype == torch.float32 and out.shape == (8,)
    assert torch.equal(out[:6], torch.zeros(6))
    assert bool((out[6:] != 0).all())


def test_float64_rounding_residue_is_no_advantage() -> None:
    # 0.1 + 0.1 + 0.1 = 0.30000000000000004 in float64, so the mean is 0.1 + 1.4e-17: the plain reference
    # z-score turns that residue into -1.4e-11. Exact comparison gives 0 for every estimator.
    r = torch.full((3,), 0.1, dtype=torch.float64)
    g = torch.zeros(3, dtype=torch.int64)
    assert bool((group_advantages_reference(r, g) != 0).any())
    b = AdvantageBatch(r, g, torch.tensor([1, 2, 3]))
    for fn in ESTIMATORS.values():
        assert torch.equal(fn(b), torch.zeros(3))


def test_call_estimator_by_name_with_options() -> None:
    b = batch(*MIXED)
    torch.testing.assert_close(call_estimator("grpo", b, {"eps": 0.0}), grpo(b, eps=0.0))
    torch.testing.assert_close(call_estimator("cale", b), cale(b))
    assert set(ESTIMATORS) == {"grpo", "dr_grpo", "cpgd", "cale"}


def test_unknown_estimator_and_options_are_config_errors() -> None:
    b = batch(*MIXED)
    with pytest.raises(ConfigError, match=r"unknown advantage estimator 'gpro'.*grpo, dr_grpo, cpgd, cale"):
        call_estimator("gpro", b)
    with pytest.raises(ConfigError, match=r"'cpgd' got unknown option\(s\) wieght; accepted options: weight"):
        call_estimator("cpgd", b, {"wieght": "std"})
    with pytest.raises(ConfigError, match=r"'cale' got unknown option\(s\) lam.*mu, alpha, beta"):
        cale(b, lam=0.5)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match=r"accepted options: \(none\)"):
        call_estimator("dr_grpo", b, {"eps": 1e-6})
    with pytest.raises(ConfigError, match=r"weight must be one of equal, std, clip_filter, got 'stdev'"):
        cpgd(b, weight="stdev")
    with pytest.raises(ConfigError, match=r"option eps must be >= 0"):
        grpo(b, eps=-1.0)
    with pytest.raises(ConfigError, match=r"option alpha must be a finite number"):
        cale(b, alpha=math.nan)
    with pytest.raises(ConfigError, match=r"option cap must be > 0"):
        cpgd(b, weight="clip_filter", cap=0.0)


def test_bad_batches_are_config_errors() -> None:
    r, g, n = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0, 0, 1]), torch.tensor([1, 2, 3])
    with pytest.raises(ConfigError, match=r"groups must have shape \(3,\), like rewards, got \(2,\)"):
        AdvantageBatch(r, g[:2], n)
    with pytest.raises(ConfigError, match=r"lengths must have shape \(3,\).*got \(3, 1\)"):
        AdvantageBatch(r, g, n[:, None])
    with pytest.raises(ConfigError, match=r"rewards must have shape \(N,\), got \(1, 3\)"):
        AdvantageBatch(r[None], g, n)
    with pytest.raises(ConfigError, match=r"rewards has 1 non-finite value.*drop those rollouts"):
        AdvantageBatch(torch.tensor([1.0, math.nan, 2.0]), g, n)
    with pytest.raises(ConfigError, match=r"groups must be torch.int64, got torch.int32.*ids.long\(\)"):
        AdvantageBatch(r, g.int(), n)
    with pytest.raises(ConfigError, match=r"lengths must be >= 0"):
        AdvantageBatch(r, g, torch.tensor([1, -1, 3]))
    with pytest.raises(ConfigError, match=r"correct must be torch.bool"):
        AdvantageBatch(r, g, n, correct=torch.tensor([1, 0, 1]))
    with pytest.raises(ConfigError, match=r"rewards must be a torch tensor, got list"):
        AdvantageBatch([1.0, 0.0, 2.0], g, n)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"needs an AdvantageBatch"):
        call_estimator("grpo", r)  # type: ignore[arg-type]
    ok = AdvantageBatch(r, g, n, correct=r >= 1.0)
    assert ok.correct is not None


def test_empty_batch_gives_empty_advantages() -> None:
    b = AdvantageBatch(torch.zeros(0), torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64))
    assert b.group_count() == 0
    for fn in ESTIMATORS.values():
        assert fn(b).shape == (0,)
