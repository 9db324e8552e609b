"""Policy losses: values and gradients w.r.t. the token log-probs against hand-computed numbers."""

from __future__ import annotations

import math

import pytest
import torch

from safework.core.errors import ConfigError
from safework.rl.losses import LossConfig, LossOutput, policy_loss

LN12, LN08 = math.log(1.2), math.log(0.8)  # CPGD's log-space clip bounds for eps = 0.2


def grad_of(out: LossOutput, x: torch.Tensor) -> torch.Tensor:
    (g,) = torch.autograd.grad(out.loss, x, retain_graph=True)
    return g


def close(actual: torch.Tensor | float, expected: object) -> None:
    torch.testing.assert_close(
        torch.as_tensor(actual, dtype=torch.float64), torch.as_tensor(expected, dtype=torch.float64)
    )


def test_cpgd_two_minibatches_per_rollout() -> None:
    # A "unigram policy": token type k has log-prob theta[k], shared by every sequence, so a step on
    # mini-batch 1 moves the ratios of mini-batch 2.
    theta = torch.tensor([-2.0, -1.0, -1.5], requires_grad=True)
    idx1, mask1, adv1 = torch.tensor([[0, 0], [1, 2]]), torch.ones(2, 2), torch.tensor([1.0, -1.0])
    idx2 = torch.tensor([[0, 1, 0], [0, 1, 2]])  # last token of sequence 0 is padding
    mask2, adv2 = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]), torch.tensor([2.0, -1.0])
    with torch.no_grad():  # the rollout
        old1, old2 = theta[idx1].clone(), theta[idx2].clone()
    cfg = LossConfig(kind="cpgd", drift_coef=0.1, drift_cap=1.0)
    no_drift = LossConfig(kind="cpgd", drift_coef=0.0)

    # Mini-batch 1: r = 1 everywhere, so nothing is clipped and the drift factor min(r - 1, c) is 0.
    lp1 = theta[idx1]
    out1 = policy_loss(lp1, old1, adv1, mask1, cfg)
    assert out1.stats["clip_fraction"] == 0.0
    assert out1.stats["drift"] == 0.0
    assert out1.stats["ratio_mean"] == out1.stats["ratio_max"] == 1.0
    assert out1.loss.item() == 0.0  # -l*A = 0 and 0 * logp = 0
    # seq-mean-token-mean: token weight 1/(B * n_b) = 1/4; d(-l*A)/dlogp = -A/4.
    g1 = grad_of(out1, lp1)
    close(g1, [[-0.25, -0.25], [0.25, 0.25]])
    assert torch.equal(g1, grad_of(policy_loss(lp1, old1, adv1, mask1, no_drift), lp1))  # drift inert

    # SGD, lr 2: d loss/d theta = (-0.25 - 0.25, 0.25, 0.25) = (-0.5, 0.25, 0.25);
    # theta <- theta - 2 * grad = (-2 + 1, -1 - 0.5, -1.5 - 0.5) = (-1, -1.5, -2).
    opt = torch.optim.SGD([theta], lr=2.0)
    opt.zero_grad()
    out1.loss.backward()
    opt.step()
    close(theta.detach(), [-1.0, -1.5, -2.0])

    # Mini-batch 2: log-ratios l = (+1, -0.5, -0.5) for types 0, 1, 2; clip bounds ln 0.8 = -0.223,
    # ln 1.2 = 0.182. Tokens: C0 (type 0, A=2), C1 (type 1, A=2), D0 (0, A=-1), D1 (1, A=-1), D2 (2, A=-1).
    # Clipped (main gradient 0): C0 (A>0, l>ln1.2), D1 and D2 (A<0, l<ln0.8) -> 3 of 5 tokens.
    # C1 (A>0, l<ln0.8) and D0 (A<0, l>ln1.2) keep the unclipped, pessimistic branch.
    lp2 = theta[idx2]
    out2 = policy_loss(lp2, old2, adv2, mask2, cfg)
    main2 = policy_loss(lp2, old2, adv2, mask2, no_drift)
    w = torch.tensor([[1 / 4, 1 / 4, 0.0], [1 / 6, 1 / 6, 1 / 6]])  # 1/(B * n_b): n = 2 and 3
    # Main gradient -A * w on unclipped tokens: C1: -2/4 = -0.5; D0: +1/6.
    close(grad_of(main2, lp2), [[0.0, -0.5, 0.0], [1 / 6, 0.0, 0.0]])
    # Drift gradient alpha * min(r - 1, c) * w: type 0 has r - 1 = e - 1 = 1.718 > c = 1, so the cap
    # binds at 1; types 1 and 2 have r - 1 = e^-0.5 - 1 = -0.3935 (not capped below).
    dn = math.exp(-0.5) - 1
    factor = torch.tensor([[1.0, dn, 0.0], [1.0, dn, dn]])
    drift_grad = grad_of(out2, lp2) - grad_of(main2, lp2)
    close(drift_grad, 0.1 * factor * w)
    close(drift_grad[mask2.bool()] / w[mask2.bool()], 0.1 * factor[mask2.bool()])

    # Values. -Phi per token: C0 -2*ln1.2 (clipped), C1 -(-0.5*2) = 1, D0 -(1*-1) = 1, D1 = D2 = ln0.8.
    policy = ((-2 * LN12 + 1) / 2 + (1 + 2 * LN08) / 3) / 2
    # Drift surrogate factor * logp, logp = (-1, -1.5, -2): C: -1, 1.5*0.3935; D: -1, 1.5*0.3935, 2*0.3935.
    drift = ((-1 - 1.5 * dn) / 2 + (-1 - 1.5 * dn - 2 * dn) / 3) / 2
    close(out2.stats["policy_loss"], policy)
    close(out2.loss.item(), policy + 0.1 * drift)
    assert out2.stats["clip_fraction"] == pytest.approx(3 / 5)
    k3_0, k3_1 = math.e - 1 - 1, math.exp(-0.5) - 1 + 0.5  # r - 1 - ln r
    assert out2.stats["drift"] == pytest.approx((2 * k3_0 + 3 * k3_1) / 5)
    assert out2.stats["ratio_mean"] == pytest.approx((2 * math.e + 3 * math.exp(-0.5)) / 5)
    assert out2.stats["ratio_max"] == pytest.approx(math.e)

    # The step on mini-batch 2 sums token gradients per type:
    # type 0: C0 0 + 0.025, D0 1/6 + 0.1/6; type 1: C1 -0.5 + 0.1*dn/4, D1 0.1*dn/6; type 2: D2 0.1*dn/6.
    opt.zero_grad()
    out2.loss.backward()
    assert theta.grad is not None
    close(theta.grad, [0.025 + 1.1 / 6, -0.5 + 0.1 * dn / 4 + 0.1 * dn / 6, 0.1 * dn / 6])


def _tokens(ratios: list[float], advantages: list[float]) -> tuple[torch.Tensor, ...]:
    """Five one-token sequences with the given ratios: logp a leaf, old_logp = logp - ln r."""
    logp = torch.full((len(ratios), 1), -1.0, requires_grad=True)
    old = logp.detach() - torch.tensor(ratios).log()[:, None]
    return logp, old, torch.tensor(advantages), torch.ones(len(ratios), 1)


def test_ppo_and_cpgd_differ_as_expected() -> None:
    # (r, A): inside the clip; clipped above (A>0); pessimistic above (A<0); pessimistic below (A>0);
    # clipped below (A<0). token-mean over 5 tokens: weight 1/5.
    logp, old, adv, mask = _tokens([1.1, 1.5, 1.5, 0.5, 0.5], [1.0, 1.0, -1.0, 1.0, -1.0])
    cp = policy_loss(logp, old, adv, mask, LossConfig("cpgd", drift_coef=0.0, aggregation="token-mean"))
    ppo = policy_loss(logp, old, adv, mask, LossConfig("ppo", drift_coef=0.5, aggregation="token-mean"))
    # CPGD: d(-l*A)/dlogp = -A (unclipped), times 1/5.  PPO: d(-r*A)/dlogp = -A*r, times 1/5.
    close(grad_of(cp, logp), [[-0.2], [0.0], [0.2], [-0.2], [0.0]])
    close(grad_of(ppo, logp), [[-0.22], [0.0], [0.3], [-0.1], [0.0]])
    # Values: CPGD -min(l*A, clip(l)*A) = -ln1.1, -ln1.2, ln1.5, -ln0.5, ln0.8;
    # PPO -min(r*A, clip(r)*A) = -1.1, -1.2, 1.5, -0.5, 0.8.
    close(cp.stats["policy_loss"], (-math.log(1.1) - LN12 + math.log(1.5) + math.log(2) + LN08) / 5)
    close(ppo.stats["policy_loss"], (-1.1 - 1.2 + 1.5 - 0.5 + 0.8) / 5)
    close(ppo.loss.item(), ppo.stats["policy_loss"])  # ppo adds no drift, whatever drift_coef says
    assert cp.stats["clip_fraction"] == ppo.stats["clip_fraction"] == pytest.approx(2 / 5)
    k3 = sum(r - 1 - math.log(r) for r in [1.1, 1.5, 1.5, 0.5, 0.5]) / 5
    assert ppo.stats["drift"] == pytest.approx(k3) and cp.stats["drift"] == pytest.approx(k3)


def test_lightrft_reference_k3_kl_by_hand() -> None:
    logp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    old = logp.detach().clone()  # r = 1: the main term is -A * logp in gradient, 0 in value
    ref = torch.tensor([[-1.0 + math.log(2), -2.0 - math.log(2)]])
    adv, mask = torch.tensor([1.0]), torch.ones(1, 2)
    cfg = LossConfig("lightrft", kl_coef=0.5, aggregation="token-mean")
    out = policy_loss(logp, old, adv, mask, cfg, ref_logp=ref)
    # d = ref - logp = (ln 2, -ln 2); k3 = e^d - d - 1 = (1 - ln 2, ln 2 - 1/2), mean = 1/4.
    assert out.stats["kl_ref"] == pytest.approx(0.25)
    close(out.loss.item(), 0.5 * 0.25)
    # dk3/dlogp = 1 - e^d = (-1, 1/2); grad = -A/2 + 0.5 * (1 - e^d) / 2 = (-0.75, -0.375).
    close(grad_of(out, logp), [[-0.75, -0.375]])
    with pytest.raises(ConfigError, match=r"'lightrft'.*pass ref_logp"):
        policy_loss(logp, old, adv, mask, cfg)
    # cpgd reports kl_ref but adds no reference term.
    cp = policy_loss(logp, old, adv, mask, LossConfig(aggregation="token-mean"), ref_logp=ref)
    assert cp.stats["kl_ref"] == pytest.approx(0.25)
    close(grad_of(cp, logp), [[-0.5, -0.5]])


def test_lightrft_has_cpgd_main_term_and_no_drift() -> None:
    logp, old, adv, mask = _tokens([1.1, 1.5, 1.5, 0.5, 0.5], [1.0, 1.0, -1.0, 1.0, -1.0])
    ref = logp.detach().clone()  # k3 to the reference is 0 with gradient 0
    lr = policy_loss(logp, old, adv, mask, LossConfig("lightrft", drift_coef=1.0), ref_logp=ref)
    cp = policy_loss(logp, old, adv, mask, LossConfig("cpgd", drift_coef=0.0))
    drifting = policy_loss(logp, old, adv, mask, LossConfig("cpgd", drift_coef=1.0))
    close(grad_of(lr, logp), grad_of(cp, logp).tolist())
    assert not torch.allclose(grad_of(drifting, logp), grad_of(cp, logp))


# Three sequences of 3, 1 and 0 counted tokens, advantages 1, 2, 5, log-ratio 0.1 on every token (inside
# the clip), so each counted token's loss is -0.1 * A: sequence 0: -0.1 x 3, sequence 1: -0.2.
AGGREGATIONS = {
    # mean over 3 sequences of token means: (-0.1 - 0.2 + 0) / 3; grad -A / (3 * n_b).
    "seq-mean-token-mean": (-0.1, -1 / 9, -2 / 3),
    # all tokens: (-0.3 - 0.2) / 4; grad -A / 4.
    "token-mean": (-0.125, -1 / 4, -2 / 4),
    # mean of token sums: (-0.3 - 0.2 + 0) / 3; grad -A / 3.
    "seq-mean-token-sum": (-0.5 / 3, -1 / 3, -2 / 3),
    # token sums / max_length 4, mean over 3: (-0.3 / 4 - 0.2 / 4) / 3 = -1/24; grad -A / 12.
    "constant": (-1 / 24, -1 / 12, -2 / 12),
}


@pytest.mark.parametrize("aggregation", sorted(AGGREGATIONS))
def test_aggregation_modes_by_hand(aggregation: str) -> None:
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    keep = mask.bool()
    logp = torch.where(keep, -1.0, -math.inf).requires_grad_(True)  # padding holds -inf ...
    old = torch.where(keep, -1.1, math.nan)  # ... and NaN, which must not leak
    cfg = LossConfig(drift_coef=0.0, aggregation=aggregation, max_length=4)  # type: ignore[arg-type]
    out = policy_loss(logp, old, torch.tensor([1.0, 2.0, 5.0]), mask, cfg)
    value, g0, g1 = AGGREGATIONS[aggregation]
    close(out.loss.item(), value)
    close(grad_of(out, logp), [[g0, g0, g0, 0.0], [g1, 0.0, 0.0, 0.0], [0.0] * 4])
    assert all(math.isfinite(v) for v in out.stats.values())


def test_fully_masked_batch_is_zero_not_nan() -> None:
    logp = torch.full((2, 3), -math.inf, requires_grad=True)
    for aggregation in AGGREGATIONS:
        cfg = LossConfig(aggregation=aggregation, max_length=8)  # type: ignore[arg-type]
        out = policy_loss(logp, logp.detach(), torch.ones(2), torch.zeros(2, 3), cfg)
        assert out.loss.item() == 0.0
        assert torch.equal(grad_of(out, logp), torch.zeros(2, 3))
        assert out.stats["clip_fraction"] == 0.0 and out.stats["ratio_max"] == 1.0


def test_low_precision_inputs_are_computed_in_float32() -> None:
    logp = torch.tensor([[-1.0, -2.0]], dtype=torch.bfloat16, requires_grad=True)
    out = policy_loss(
        logp, logp.detach(), torch.tensor([1.0]), torch.ones(1, 2, dtype=torch.bool), LossConfig()
    )
    assert out.loss.dtype == torch.float32
    close(grad_of(out, logp).float(), [[-0.5, -0.5]])


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"clip_eps": 0.0}, r"clip_eps must be in \(0, 1\)"),
        ({"clip_eps": 1.0}, r"clip_eps must be in \(0, 1\)"),
        ({"drift_coef": -0.1}, r"drift_coef must be a finite number >= 0"),
        ({"kl_coef": math.inf}, r"kl_coef must be a finite number >= 0"),
        ({"drift_cap": 0.0}, r"drift_cap must be a finite number > 0"),
        ({"aggregation": "constant"}, r"'constant' divides by max_length: set max_length"),
        ({"aggregation": "sum"}, r"aggregation must be one of seq-mean-token-mean, token-mean"),
        ({"kind": "grpo"}, r"loss kind must be one of cpgd, ppo, lightrft, got 'grpo'"),
        ({"max_length": -1}, r"max_length must be an int >= 0"),
    ],
)
def test_bad_config_is_a_config_error(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        LossConfig(**kwargs)  # type: ignore[arg-type]


def test_bad_shapes_are_config_errors() -> None:
    logp, ones, adv, cfg = torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(2), LossConfig()
    with pytest.raises(ConfigError, match=r"old_logp has shape \(2, 4\) but logp has \(2, 3\)"):
        policy_loss(logp, torch.zeros(2, 4), adv, ones, cfg)
    with pytest.raises(ConfigError, match=r"mask has shape \(3,\) but logp has \(2, 3\)"):
        policy_loss(logp, logp, adv, torch.ones(3), cfg)
    with pytest.raises(ConfigError, match=r"advantages has shape \(2, 1\), expected \(2,\)"):
        policy_loss(logp, logp, adv[:, None], ones, cfg)
    with pytest.raises(ConfigError, match=r"ref_logp has shape \(3, 2\)"):
        policy_loss(logp, logp, adv, ones, cfg, ref_logp=torch.zeros(3, 2))
    with pytest.raises(ConfigError, match=r"logp must be a float \(B, T\) tensor.*\(3,\)"):
        policy_loss(torch.zeros(3), torch.zeros(3), adv, torch.ones(3), cfg)
