"""Per-token policy losses for SafeLadder's RL stages: CPGD, the PPO/GRPO surrogate, and LightRFT parity.

Inputs are (B, T): ``logp`` (current policy log-prob of each generated token, with grad), ``old_logp``
(the rollout policy's), ``mask`` (1 where a token counts) and optional ``ref_logp`` (reference model), plus
one advantage per sequence (B,). Write ``l = logp - old_logp`` and ``r = exp(l)``.

* ``cpgd`` (arXiv 2505.12504): ``-min(l*A, clip(l, ln(1-eps), ln(1+eps))*A) + alpha*min(sg(r) - 1, c)*logp``.
  The main term works on the log-ratio, not the ratio (no ratio variance), and clipping it zeroes the
  token's gradient; the drift term is the k3 estimate ``r - 1 - ln r`` of KL(pi_old || pi_theta) in
  gradient form, its factor ``r - 1`` capped at ``c`` so a runaway ratio is still pushed back, with weight c
  (capping the estimator's *value* instead would reverse the push). Its loss value is a surrogate; the
  ``drift`` stat reports the k3 value.
* ``ppo``: ``-min(r*A, clip(r, 1-eps, 1+eps)*A)``, no drift term (the ``drift`` stat is still reported).
* ``lightrft``: cpgd's main term, no drift, plus ``kl_coef * k3`` to the *reference* model with
  ``k3 = exp(ref - logp) - (ref - logp) - 1``: what SafeWork-R1's released M3-RL script runs (LightRFT's
  CPG loss with ``--use_kl_loss``), kept for parity.

Right after a rollout ``old_logp`` equals ``logp``, so on the first mini-batch r = 1: the clip cannot bind
and the drift factor is 0. Both act only from the second mini-batch (or epoch) on, once an optimiser step
has moved the policy.

Tokens outside ``mask`` are replaced by 0 before any arithmetic, so padding may hold -inf or NaN without
reaching the loss or its gradient. Everything is computed in at least float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

import torch

from safework.core.errors import ConfigError

LossKind = Literal["cpgd", "ppo", "lightrft"]
Aggregation = Literal["seq-mean-token-mean", "token-mean", "seq-mean-token-sum", "constant"]


@dataclass(frozen=True)
class LossConfig:
    """Policy-loss settings; defaults follow the CPGD reference code."""

    kind: LossKind = "cpgd"
    clip_eps: float = 0.2
    drift_coef: float = 0.01  # CPGD alpha (reference code ~0.01, not the 0.1 some write-ups suggest)
    drift_cap: float = 2.0  # c: cap on the drift's gradient factor r - 1
    kl_coef: float = 1e-3  # lightrft: reference-model k3 KL coefficient
    aggregation: Aggregation = "seq-mean-token-mean"
    max_length: int = 0  # "constant" (Dr.GRPO): per-sequence token sum / max_length, mean over sequences

    def __post_init__(self) -> None:
        if self.kind not in get_args(LossKind):
            raise ConfigError(f"loss kind must be one of {', '.join(get_args(LossKind))}, got {self.kind!r}")
        if self.aggregation not in get_args(Aggregation):
            raise ConfigError(
                f"loss aggregation must be one of {', '.join(get_args(Aggregation))}, "
                f"got {self.aggregation!r}"
            )
        if not (isinstance(self.clip_eps, int | float) and 0.0 < self.clip_eps < 1.0):
            raise ConfigError(f"clip_eps must be in (0, 1), e.g. 0.2; got {self.clip_eps!r}")
        for name in ("drift_coef", "kl_coef"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(
                    f"{name} must be a finite number >= 0 (0 switches the term off); got {value!r}"
                )
        if not (
            isinstance(self.drift_cap, int | float) and math.isfinite(self.drift_cap) and self.drift_cap > 0
        ):
            raise ConfigError(f"drift_cap must be a finite number > 0, e.g. 2.0; got {self.drift_cap!r}")
        if not isinstance(self.max_length, int) or self.max_length < 0:
            raise ConfigError(f"max_length must be an int >= 0, got {self.max_length!r}")
        if self.aggregation == "constant" and self.max_length < 1:
            raise ConfigError(
                "aggregation 'constant' divides by max_length: set max_length to the generation limit "
                "(e.g. 8192), got 0"
            )


@dataclass
class LossOutput:
    """The scalar to ``backward()`` and float stats for logging."""

    loss: torch.Tensor
    stats: dict[str, float] = field(default_factory=dict)


def _validate(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    ref_logp: torch.Tensor | None,
) -> None:
    named = {"logp": logp, "old_logp": old_logp, "advantages": advantages, "mask": mask}
    if ref_logp is not None:
        named["ref_logp"] = ref_logp
    for name, t in named.items():
        if not isinstance(t, torch.Tensor):
            raise ConfigError(f"policy_loss: {name} must be a torch tensor, got {type(t).__name__}")
        if t.device != logp.device:
            raise ConfigError(f"policy_loss: {name} is on {t.device}, logp on {logp.device}; use one device")
    if logp.dim() != 2 or logp.shape[0] < 1 or not logp.is_floating_point():
        raise ConfigError(
            "policy_loss: logp must be a float (B, T) tensor with B >= 1, "
            f"got {logp.dtype} {tuple(logp.shape)}"
        )
    shape = tuple(logp.shape)
    for name in ("old_logp", "mask", "ref_logp"):
        other = named.get(name)
        if other is not None and tuple(other.shape) != shape:
            raise ConfigError(
                f"policy_loss: {name} has shape {tuple(other.shape)} but logp has {shape}; "
                "all per-token tensors must be (B, T)"
            )
    if tuple(advantages.shape) != shape[:1]:
        raise ConfigError(
            f"policy_loss: advantages has shape {tuple(advantages.shape)}, expected ({shape[0]},): "
            "one advantage per sequence of logp (B, T)"
        )


def _aggregate(x: torch.Tensor, m: torch.Tensor, config: LossConfig) -> torch.Tensor:
    """Reduce per-token values ``x`` (zero outside the mask) to a scalar; empty sequences count as 0."""
    tokens = m.sum(1)
    sums = x.sum(1)
    if config.aggregation == "seq-mean-token-mean":
        return (sums / tokens.clamp(min=1)).mean()
    if config.aggregation == "token-mean":
        return sums.sum() / tokens.sum().clamp(min=1)
    if config.aggregation == "seq-mean-token-sum":
        return sums.mean()
    return (sums / config.max_length).mean()


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    config: LossConfig,
    ref_logp: torch.Tensor | None = None,
) -> LossOutput:
    """The per-token policy loss of ``config.kind``, aggregated over masked tokens by ``config.aggregation``.

    Stats: ``loss``, ``policy_loss`` (main term alone), ``drift`` (mean k3 ``r - 1 - ln r`` over masked
    tokens), ``clip_fraction`` (share of masked tokens whose main-term gradient the clip zeroed),
    ``ratio_mean``, ``ratio_max``, and ``kl_ref`` (mean reference k3) when ``ref_logp`` is given.
    """
    _validate(logp, old_logp, advantages, mask, ref_logp)
    if config.kind == "lightrft" and ref_logp is None:
        raise ConfigError(
            "loss kind 'lightrft' adds a reference-model KL: pass ref_logp (the reference model's token "
            "log-probs, (B, T)), or use kind 'cpgd'"
        )
    dtype = torch.promote_types(logp.dtype, torch.float32)
    keep = mask.to(torch.bool)
    m = keep.to(dtype)
    zero = torch.zeros((), dtype=dtype, device=logp.device)
    lp = torch.where(keep, logp.to(dtype), zero)
    old = torch.where(keep, old_logp.detach().to(dtype), zero)
    adv = advantages.detach().to(dtype)[:, None]

    log_ratio = lp - old
    ratio = log_ratio.exp()
    eps = config.clip_eps
    if config.kind == "ppo":
        lo, hi, moving = 1.0 - eps, 1.0 + eps, ratio
    else:
        lo, hi, moving = math.log1p(-eps), math.log1p(eps), log_ratio
    # min(x*A, clip(x)*A) picks the clipped, constant branch exactly in these cases (gradient 0).
    clipped = keep & (((adv > 0) & (moving > hi)) | ((adv < 0) & (moving < lo)))
    objective = torch.where(clipped, moving.detach().clamp(lo, hi) * adv, moving * adv)
    main = -objective * m
    total = main
    if config.kind == "cpgd" and config.drift_coef > 0:
        factor = (ratio.detach() - 1.0).clamp(max=config.drift_cap)
        total = total + config.drift_coef * factor * lp * m
    kl_ref: torch.Tensor | None = None
    if ref_logp is not None:
        d = torch.where(keep, ref_logp.detach().to(dtype), zero) - lp
        kl_ref = (d.exp() - d - 1.0) * m
        if config.kind == "lightrft" and config.kl_coef > 0:
            total = total + config.kl_coef * kl_ref
    loss = _aggregate(total, m, config)

    with torch.no_grad():  # one device-to-host copy for all stats
        n_tokens = m.sum().clamp(min=1)
        one = torch.ones((), dtype=dtype, device=logp.device)
        k3 = (ratio - 1.0 - log_ratio) * m
        values = [
            loss.detach(),
            _aggregate(main, m, config),
            k3.sum() / n_tokens,
            clipped.to(dtype).sum() / n_tokens,
            torch.where(keep.any(), (ratio * m).sum() / n_tokens, one),  # r = 1 when nothing counts
            torch.where(keep.any(), ratio.masked_fill(~keep, -math.inf).max(), one),
        ]
        names = ["loss", "policy_loss", "drift", "clip_fraction", "ratio_mean", "ratio_max"]
        if kl_ref is not None:
            values.append(kl_ref.sum() / n_tokens)
            names.append("kl_ref")
        numbers = torch.stack(values).to(dtype=torch.float64, device="cpu").tolist()
    return LossOutput(loss=loss, stats=dict(zip(names, numbers, strict=True)))
