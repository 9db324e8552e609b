"""Advantage estimators of SafeLadder: one rollout batch of scalar rewards in, one advantage per rollout out.

An estimator is a plain function ``estimator(batch, **options) -> (N,) float32``; :data:`ESTIMATORS` names
the built-ins and :func:`call_estimator` runs one by name with options from a config, so a misspelt option
is a :class:`ConfigError` that lists the accepted ones instead of a ``TypeError``.

Shared rule: a group whose rewards are all exactly equal (compared in float64), or that has one item,
carries no preference between its responses, so every item in it gets advantage exactly 0. Without this
check, float rounding of the group mean (e.g. three rewards of 0.01) leaves "phantom" advantages of order
1e-18, which a std division blows up to order 1, and CALE with ``alpha != 1`` would rank equal rewards.

Group statistics are computed in float64 with ``torch.unique(return_inverse=True)`` and ``index_add_``,
vectorised over the batch; outputs are float32 on the rewards' device.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple, ParamSpec

import torch

from safework.core.errors import ConfigError
from safework.verifiers.fused import group_advantages_reference

P = ParamSpec("P")
CPGD_WEIGHTS = ("equal", "std", "clip_filter")


class _Groups(NamedTuple):
    inverse: torch.Tensor  # (N,) int64 dense group index 0..G-1
    counts: torch.Tensor  # (G,) int64 items per group
    mean: torch.Tensor  # (G,) float64 reward mean
    flat: torch.Tensor  # (G,) bool: all rewards exactly equal (or a single item)


def _check(t: object, name: str, dtypes: tuple[torch.dtype, ...], n: int | None, fix: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise ConfigError(f"AdvantageBatch.{name} must be a torch tensor, got {type(t).__name__}; {fix}")
    if t.dim() != 1 or (n is not None and t.shape[0] != n):
        want = "(N,)" if n is None else f"({n},), like rewards"
        raise ConfigError(f"AdvantageBatch.{name} must have shape {want}, got {tuple(t.shape)}; {fix}")
    if t.dtype not in dtypes:
        raise ConfigError(
            f"AdvantageBatch.{name} must be {' or '.join(map(str, dtypes))}, got {t.dtype}; {fix}"
        )
    return t


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no single truth value
class AdvantageBatch:
    """One rollout batch: N responses, each with a reward, a prompt-group id and a response length."""

    rewards: torch.Tensor  # (N,) float, finite
    groups: torch.Tensor  # (N,) int64 prompt-group id (any values, any order)
    lengths: torch.Tensor  # (N,) int64 response token counts, >= 0
    correct: torch.Tensor | None = None  # (N,) bool, e.g. reward >= threshold; unused by the built-ins

    def __post_init__(self) -> None:
        floats = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
        r = _check(self.rewards, "rewards", floats, None, "pass a 1-D float tensor, one reward per response")
        n = r.shape[0]
        _check(self.groups, "groups", (torch.int64,), n, "pass one prompt id per response, e.g. ids.long()")
        _check(
            self.lengths, "lengths", (torch.int64,), n, "pass response token counts, e.g. mask.sum(1).long()"
        )
        if self.correct is not None:
            _check(self.correct, "correct", (torch.bool,), n, "pass e.g. rewards >= threshold, or None")
        others = {"groups": self.groups, "lengths": self.lengths, "correct": self.correct}
        for name, t in others.items():
            if t is not None and t.device != r.device:
                raise ConfigError(
                    f"AdvantageBatch.{name} is on {t.device} but rewards are on {r.device}; "
                    "move all fields to one device"
                )
        if not bool(torch.isfinite(r).all()):
            bad = int((~torch.isfinite(r)).sum())
            raise ConfigError(
                f"AdvantageBatch.rewards has {bad} non-finite value(s) (NaN or inf); fix the reward function "
                "or drop those rollouts before estimating advantages"
            )
        if n and int(self.lengths.min()) < 0:
            raise ConfigError("AdvantageBatch.lengths must be >= 0 (token counts); got a negative length")

    @cached_property
    def _grouping(self) -> _Groups:
        ids, inverse, counts = torch.unique(self.groups, return_inverse=True, return_counts=True)
        r = self.rewards.to(torch.float64)
        g = ids.shape[0]
        mean = torch.zeros(g, dtype=torch.float64, device=r.device).index_add_(0, inverse, r) / counts
        hi = torch.full_like(mean, -math.inf).scatter_reduce_(0, inverse, r, "amax")
        lo = torch.full_like(mean, math.inf).scatter_reduce_(0, inverse, r, "amin")
        return _Groups(inverse, counts, mean, hi == lo)

    def zero_variance(self) -> torch.Tensor:
        """(N,) bool: the item's group has all-equal rewards (or size 1), so its advantage is 0."""
        grouping = self._grouping
        return grouping.flat[grouping.inverse]

    def group_count(self) -> int:
        return int(self._grouping.counts.shape[0])

    def zero_variance_group_count(self) -> int:
        return int(self._grouping.flat.sum())

    def _centred(self) -> torch.Tensor:
        """(N,) float64 ``R - mean_g R``; exactly 0 in zero-variance groups."""
        g = self._grouping
        dev = self.rewards.to(torch.float64) - g.mean[g.inverse]
        return dev.masked_fill(g.flat[g.inverse], 0.0)

    def _sample_std(self) -> torch.Tensor:
        """(N,) float64 sample standard deviation (divisor n_g - 1) of the item's group."""
        g = self._grouping
        dev = self._centred()
        squares = torch.zeros_like(g.mean).index_add_(0, g.inverse, dev * dev)
        return (squares / (g.counts - 1).clamp(min=1)).sqrt()[g.inverse]


def _estimator(fn: Callable[P, torch.Tensor]) -> Callable[P, torch.Tensor]:
    """Turn an unexpected keyword into a ConfigError that lists the estimator's accepted options."""
    params = inspect.signature(fn).parameters
    accepted = [k for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> torch.Tensor:
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise ConfigError(
                f"advantage estimator {fn.__name__!r} got unknown option(s) {', '.join(unknown)}; "
                f"accepted options: {', '.join(accepted) or '(none)'}"
            )
        return fn(*args, **kwargs)

    return wrapper


def _finite(name: str, value: float, *, minimum: float | None = None, positive: bool = False) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigError(f"option {name} must be a finite number, got {value!r}")
    if (minimum is not None and value < minimum) or (positive and value <= 0):
        raise ConfigError(f"option {name} must be {'> 0' if positive else f'>= {minimum}'}, got {value!r}")
    return float(value)


@_estimator
def grpo(batch: AdvantageBatch, *, eps: float = 1e-6, unbiased: bool = True) -> torch.Tensor:
    """GRPO group z-score ``(R - mean_g) / (std_g + eps)`` (sample std unless ``unbiased=False``).

    Delegates to the verifiers' reference (the same numbers the fused scoring op produces), then zeroes
    zero-variance groups by exact comparison: the reference's ``std > 0`` test misses rounding residue.
    """
    eps = _finite("eps", eps, minimum=0.0)
    if not isinstance(unbiased, bool):
        raise ConfigError(f"option unbiased must be true or false, got {unbiased!r}")
    adv = group_advantages_reference(batch.rewards, batch.groups, eps, unbiased)
    return adv.masked_fill(batch.zero_variance(), 0.0)


@_estimator
def dr_grpo(batch: AdvantageBatch) -> torch.Tensor:
    """Dr.GRPO (arXiv 2503.20783): ``R - mean_g R``, no std division (it up-weights near-flat groups).

    Dr.GRPO's other half, the constant length normaliser, is the loss's ``"constant"`` aggregation.
    """
    return batch._centred().to(torch.float32)


@_estimator
def cpgd(batch: AdvantageBatch, *, weight: str = "std", cap: float = 3.0, eps: float = 1e-6) -> torch.Tensor:
    """CPGD's weighted advantage (arXiv 2505.12504): ``A = omega(x) * (R - mean_g R)``.

    ``weight``: ``"equal"`` omega = 1; ``"std"`` omega = 1 / (sample std_g + eps), i.e. GRPO's z-score (the
    paper's best overall); ``"clip_filter"`` omega = min(cap, #groups / #groups with nonzero reward std),
    one value for the whole batch, which up-weights the informative prompts as online filtering would
    (0 everywhere if no group has spread).
    """
    cap = _finite("cap", cap, positive=True)
    eps = _finite("eps", eps, minimum=0.0)
    dev = batch._centred()
    if weight == "equal":
        adv = dev
    elif weight == "std":
        adv = dev / (batch._sample_std() + eps)
    elif weight == "clip_filter":
        informative = batch.group_count() - batch.zero_variance_group_count()
        adv = dev * (min(cap, batch.group_count() / informative) if informative else 0.0)
    else:
        raise ConfigError(f"cpgd option weight must be one of {', '.join(CPGD_WEIGHTS)}, got {weight!r}")
    return adv.masked_fill(batch.zero_variance(), 0.0).to(torch.float32)


@_estimator
def cale(batch: AdvantageBatch, *, mu: float = 1.0, alpha: float = 0.9, beta: float = 0.0) -> torch.Tensor:
    """CALE as CANON-by-length (arXiv 2509.23962; SafeWork-R1 arXiv 2507.18576, stage 3).

    Per group, responses are sorted by (length, original index) and split into the shorter half G- and
    the longer half G+ (``n // 2`` each). Then

    * o in G-: ``A_inter = R_o - alpha * mean(R[G+]) - beta``;
    * o in G+: ``A_inter = alpha * R_o - mean(R[G-]) + beta``;
    * ``A_intra = R_o - mean(R[own half])``; ``A = mu * A_inter + (1 - mu) * A_intra``.

    Odd groups: the median-length response is in neither half (it is neither short nor long), so it is
    compared with everyone else, untilted: ``A_inter = R_o - mean(R[others])`` (= R_o minus the average of
    the two half means) and ``A_intra = 0`` (a half of one). The halves exclude it.

    With ``mu=0.5, alpha=1, beta=0`` an even group reduces exactly to Dr.GRPO. The defaults ``alpha=0.9,
    mu=1`` are the CANON paper's efficiency setting: alpha < 1 tilts the inter-half comparison toward
    shorter responses, and the data decide per prompt whether short or long wins. Groups whose rewards are
    all equal get 0, although alpha != 1 would otherwise rank their equal rewards (no phantom advantages).
    There is no division by L_max here: that is the loss's ``"constant"`` aggregation.
    """
    mu, alpha, beta = _finite("mu", mu), _finite("alpha", alpha), _finite("beta", beta)
    g = batch._grouping
    n_items = batch.rewards.shape[0]
    r = batch.rewards.to(torch.float64)
    device = r.device
    # Stable sorts: by length, then by group; ties keep the original index order.
    order = torch.argsort(batch.lengths, stable=True)
    order = order[torch.argsort(g.inverse[order], stable=True)]
    starts = torch.cumsum(g.counts, 0) - g.counts
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n_items, device=device) - starts[g.inverse[order]]
    size = g.counts[g.inverse]
    half = size // 2
    # Half of each item: 0 shorter, 1 longer, 2 median of an odd group.
    side = torch.where(rank < half, 0, torch.where(rank >= size - half, 1, 2))
    key = g.inverse * 3 + side
    n_groups = g.counts.shape[0]
    sums = torch.zeros(n_groups * 3, dtype=torch.float64, device=device).index_add_(0, key, r).view(-1, 3)
    cnts = torch.zeros(n_groups * 3, dtype=torch.float64, device=device)
    cnts = cnts.index_add_(0, key, torch.ones_like(r)).view(-1, 3)
    means = sums / cnts.clamp(min=1)
    short_mean, long_mean = means[g.inverse, 0], means[g.inverse, 1]
    others_mean = (sums.sum(1)[g.inverse] - r) / (size - 1).clamp(min=1)
    inter = torch.where(
        side == 0,
        r - alpha * long_mean - beta,
        torch.where(side == 1, alpha * r - short_mean + beta, r - others_mean),
    )
    intra = torch.where(side == 2, torch.zeros_like(r), r - means[g.inverse, side.clamp(max=1)])
    adv = mu * inter + (1.0 - mu) * intra
    return adv.masked_fill(batch.zero_variance(), 0.0).to(torch.float32)


ESTIMATORS: dict[str, Callable[..., torch.Tensor]] = {
    "grpo": grpo,
    "dr_grpo": dr_grpo,
    "cpgd": cpgd,
    "cale": cale,
}


def call_estimator(
    name: str, batch: AdvantageBatch, options: Mapping[str, Any] | None = None
) -> torch.Tensor:
    """Run the estimator ``name`` with ``options`` (e.g. from a config); every mistake is a ConfigError."""
    fn = ESTIMATORS.get(name)
    if fn is None:
        raise ConfigError(f"unknown advantage estimator {name!r}; known estimators: {', '.join(ESTIMATORS)}")
    if not isinstance(batch, AdvantageBatch):
        raise ConfigError(f"call_estimator needs an AdvantageBatch, got {type(batch).__name__}")
    opts = dict(options or {})
    if "batch" in opts:
        raise ConfigError(f"'batch' is not an option of advantage estimator {name!r}; pass it as the batch")
    return fn(batch, **opts)
