"""Fused verifier scoring: class logits -> label probabilities -> mapped scores -> reward -> group advantage.

Why one kernel: an RL step scores every rollout with several classifier verifiers and then needs only a
scalar advantage per rollout. Done with torch ops that is a masked softmax, a product, two weighted sums and
a scatter-based group normalisation, about twenty kernel launches and as many temporaries; the native op
(``csrc/verifiers/``, CPU/OpenMP and CUDA) does it in one pass over the logits.

Semantics, for item ``i`` (a rollout) and verifier ``v`` (SafeLadder spec §4-§5):

* ``p[i, v, l] = softmax(logits[i, v, :label_counts[v]])[l]``; labels ``l >= label_counts[v]`` are padding,
  never read, and get probability 0 (max-subtracted, so large logits are safe).
* ``s[i, v] = sum_l p[i, v, l] * score_maps[v, l]`` (the graded score of :meth:`LabelScheme.graded`); where
  ``available[i, v]`` is false the verifier was not loaded for that item and, per spec §4, its component
  counts as ``s = 1.0`` (its probabilities are reported as 0 and its logits are ignored, NaN included).
* ``r[i] = format_rewards[i] * format_weights[i] + sum_v weights[i, v] * s[i, v]``.
* ``A[i] = (r[i] - mean_g) / (std_g + eps)`` over the items of ``i``'s group ``g``, with the *sample*
  standard deviation (divisor ``n_g - 1``) by default: that is GRPO's ``group_norm`` (``torch.std``, as in
  TRL, OpenRLHF and the LightRFT script SafeWork's M3-RL runs, spec §3); ``unbiased=False`` gives the
  population std. A group of one item, or whose rewards are all equal, gets advantage 0 (never NaN, also
  with ``eps=0``). Group statistics are computed in float64.

``groups`` is either an int64 tensor of ids (any values, any order) or an int ``k`` for contiguous groups of
``k`` items (``N % k == 0``), the usual rollout layout, which the CUDA path handles in a single kernel.

Tolerances: the native CPU and CUDA paths share their arithmetic operation for operation (own ``exp``, no fma
contraction, fixed reduction orders), so they agree bit for bit. Against the torch reference
(:func:`fused_score_reference`) float32 outputs agree to ``rtol=1e-5, atol=1e-6`` (different ``exp`` and
summation order); advantages divide reward differences by ``std_g``, so they agree to ``atol=1e-5`` when
``std_g`` is not tiny, and exactly up to float64 rounding when both use the same rewards.

``SAFEWORK_OPS`` chooses native or reference as for every op (:mod:`safework.core.ops.mode`). This module
imports only torch and ``safework.core`` (never the rest of ``safework.verifiers``), so it can be loaded from
a bare source tree, as ``benchmarks/gpu_check_fused.py`` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from safework.core.ops.dispatch import native_module
from safework.core.ops.prf import OpInputError

OP = "fused_score"
DEFAULT_EPS = 1e-6  # verl's GRPO epsilon; small enough to leave well-spread groups' z-scores unchanged


@dataclass(frozen=True)
class FusedScores:
    """Outputs of one scoring pass (all float32, on the input device)."""

    scores: torch.Tensor  # (N, V) mapped score per verifier; 1.0 where the verifier was unavailable
    rewards: torch.Tensor  # (N,) recipe-weighted reward
    advantages: torch.Tensor  # (N,) group-normalised advantage
    probabilities: torch.Tensor | None = None  # (N, V, L) label probabilities, if requested


@dataclass(frozen=True)
class _Inputs:
    """Validated, contiguous inputs (see :func:`_prepare`)."""

    logits: torch.Tensor
    label_counts: torch.Tensor
    score_maps: torch.Tensor
    weights: torch.Tensor
    format_rewards: torch.Tensor
    format_weights: torch.Tensor
    available: torch.Tensor
    group_ids: torch.Tensor | None
    group_size: int
    eps: float
    unbiased: bool


def pack_score_maps(
    score_vectors: Sequence[Sequence[float]], device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(score_maps (V, Lmax) float32, label_counts (V,) int64)`` from one score vector per verifier.

    E.g. ``pack_score_maps([SAFETY.score_vector(), VALUE.score_vector()])``; shorter rows are zero-padded.
    """
    rows = [list(map(float, row)) for row in score_vectors]
    if not rows or any(not row for row in rows):
        raise OpInputError(
            "pack_score_maps needs at least one verifier and at least one label per verifier; "
            "pass e.g. [SAFETY.score_vector(), VALUE.score_vector()]"
        )
    width = max(len(row) for row in rows)
    maps = torch.zeros((len(rows), width), dtype=torch.float32)
    for v, row in enumerate(rows):
        maps[v, : len(row)] = torch.tensor(row, dtype=torch.float32)
    counts = torch.tensor([len(row) for row in rows], dtype=torch.int64)
    return maps.to(device), counts.to(device)


# ------------------------------------------------------------------------------------------ validation


def _tensor(
    value: object, name: str, dtypes: tuple[torch.dtype, ...], shape: tuple[int, ...]
) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise OpInputError(f"{name} must be a torch tensor, got {type(value).__name__}")
    if value.dtype not in dtypes:
        wanted = " or ".join(str(d) for d in dtypes)
        raise OpInputError(f"{name} must be {wanted}, got {value.dtype}; convert with .to({dtypes[0]})")
    if tuple(value.shape) != shape:
        raise OpInputError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
    return value


def _same_device(device: torch.device, **tensors: torch.Tensor) -> None:
    for name, t in tensors.items():
        if t.device != device:
            raise OpInputError(
                f"{name} is on {t.device} but logits are on {device}; move all inputs to one device"
            )


def _prepare(
    logits: torch.Tensor,
    label_counts: torch.Tensor,
    score_maps: torch.Tensor,
    weights: torch.Tensor,
    format_rewards: torch.Tensor,
    available: torch.Tensor,
    groups: torch.Tensor | int,
    format_weights: torch.Tensor | float,
    eps: float,
    unbiased: bool,
) -> _Inputs:
    """Check every input and bring it to the layout the kernels take; errors say what to change."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        got = f"shape {tuple(logits.shape)}" if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise OpInputError(f"logits must be a 3-D tensor (items N, verifiers V, labels Lmax), got {got}")
    n, v, lmax = logits.shape
    if v < 1 or lmax < 1:
        raise OpInputError(f"logits need at least one verifier and one label, got shape {(n, v, lmax)}")
    _tensor(logits, "logits", (torch.float32,), (n, v, lmax))
    ints = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
    _tensor(label_counts, "label_counts", ints, (v,))
    _tensor(score_maps, "score_maps", (torch.float32,), (v, lmax))
    _tensor(weights, "weights", (torch.float32,), (n, v))
    _tensor(format_rewards, "format_rewards", (torch.float32,), (n,))
    _tensor(available, "available", (torch.bool, torch.uint8), (n, v))
    device = logits.device
    _same_device(
        device,
        label_counts=label_counts,
        score_maps=score_maps,
        weights=weights,
        format_rewards=format_rewards,
        available=available,
    )
    counts = label_counts.to(torch.int64)
    low, high = (int(c) for c in torch.stack(torch.aminmax(counts)).tolist())  # one device sync
    if low < 1 or high > lmax:
        raise OpInputError(
            f"label_counts must lie in [1, {lmax}] (Lmax = logits.shape[2]), got values in [{low}, {high}]"
        )
    if isinstance(format_weights, bool) or not isinstance(format_weights, torch.Tensor | float | int):
        raise OpInputError(f"format_weights must be a float or a tensor, got {type(format_weights).__name__}")
    if isinstance(format_weights, torch.Tensor):
        if format_weights.dim() == 0:
            format_weights = format_weights.reshape(1).expand(n)
        _tensor(format_weights, "format_weights", (torch.float32,), (n,))
        _same_device(device, format_weights=format_weights)
        fmt_w = format_weights.contiguous()
    else:
        fmt_w = torch.full((n,), float(format_weights), dtype=torch.float32, device=device)
    group_ids: torch.Tensor | None = None
    group_size = 0
    if isinstance(groups, torch.Tensor):
        _tensor(groups, "groups", ints, (n,))
        _same_device(device, groups=groups)
        group_ids = groups.to(torch.int64).contiguous()
    elif isinstance(groups, int) and not isinstance(groups, bool):
        if groups < 1 or n % groups != 0:
            raise OpInputError(
                f"groups={groups} must be a positive group size dividing N={n}; pass an int64 tensor of "
                "group ids for uneven or unordered groups"
            )
        group_size = groups
    else:
        raise OpInputError(f"groups must be an int64 id tensor (N,) or an int group size, got {groups!r}")
    if isinstance(eps, bool) or not isinstance(eps, float | int) or not math.isfinite(eps) or eps < 0:
        raise OpInputError(f"eps must be a finite float >= 0, got {eps!r}")
    return _Inputs(
        logits=logits.contiguous(),
        label_counts=counts.contiguous(),
        score_maps=score_maps.contiguous(),
        weights=weights.contiguous(),
        format_rewards=format_rewards.contiguous(),
        format_weights=fmt_w,
        available=available.contiguous(),
        group_ids=group_ids,
        group_size=group_size,
        eps=float(eps),
        unbiased=bool(unbiased),
    )


# ------------------------------------------------------------------------------------------ reference


def group_advantages_reference(
    rewards: torch.Tensor, groups: torch.Tensor | int, eps: float = DEFAULT_EPS, unbiased: bool = True
) -> torch.Tensor:
    """Pure-torch group z-score of ``rewards`` (N,) -> (N,) float32, statistics in float64."""
    n = rewards.shape[0]
    ids = groups if isinstance(groups, torch.Tensor) else torch.arange(n, device=rewards.device) // groups
    _, inverse, counts = torch.unique(ids, return_inverse=True, return_counts=True)
    r = rewards.to(torch.float64)
    sums = torch.zeros(counts.shape[0], dtype=torch.float64, device=r.device).index_add_(0, inverse, r)
    mean = sums / counts
    dev = r - mean[inverse]
    squares = torch.zeros_like(sums).index_add_(0, inverse, dev * dev)
    divisor = (counts - 1 if unbiased else counts).clamp(min=1)
    std = (squares / divisor).sqrt()[inverse]
    adv = dev / (std + eps)
    keep = (counts[inverse] > 1) & (std > 0)
    return torch.where(keep, adv, torch.zeros_like(adv)).to(torch.float32)


def _reference(x: _Inputs, with_probabilities: bool) -> FusedScores:
    lmax = x.logits.shape[2]
    valid = torch.arange(lmax, device=x.logits.device) < x.label_counts[:, None]  # (V, L)
    probs = torch.softmax(x.logits.masked_fill(~valid, float("-inf")), dim=-1)
    avail = x.available.to(torch.bool)
    probs = torch.where(avail[..., None], probs, torch.zeros_like(probs))
    mapped = (probs * x.score_maps).sum(dim=-1)
    scores = torch.where(avail, mapped, torch.ones_like(mapped))
    rewards = x.format_rewards * x.format_weights + (x.weights * scores).sum(dim=-1)
    groups: torch.Tensor | int = x.group_ids if x.group_ids is not None else x.group_size
    advantages = group_advantages_reference(rewards, groups, x.eps, x.unbiased)
    return FusedScores(scores, rewards, advantages, probs if with_probabilities else None)


def fused_score_reference(
    logits: torch.Tensor,
    label_counts: torch.Tensor,
    score_maps: torch.Tensor,
    weights: torch.Tensor,
    format_rewards: torch.Tensor,
    available: torch.Tensor,
    groups: torch.Tensor | int,
    *,
    format_weights: torch.Tensor | float = 1.0,
    eps: float = DEFAULT_EPS,
    unbiased: bool = True,
    return_probabilities: bool = False,
) -> FusedScores:
    """The unfused pure-torch implementation (several ops): ground truth, and what ``reference`` mode runs."""
    x = _prepare(
        logits,
        label_counts,
        score_maps,
        weights,
        format_rewards,
        available,
        groups,
        format_weights,
        eps,
        unbiased,
    )
    return _reference(x, return_probabilities)


# ------------------------------------------------------------------------------------------ public op


def fused_score(
    logits: torch.Tensor,
    label_counts: torch.Tensor,
    score_maps: torch.Tensor,
    weights: torch.Tensor,
    format_rewards: torch.Tensor,
    available: torch.Tensor,
    groups: torch.Tensor | int,
    *,
    format_weights: torch.Tensor | float = 1.0,
    eps: float = DEFAULT_EPS,
    unbiased: bool = True,
    return_probabilities: bool = False,
) -> FusedScores:
    """Score N items with V classifier verifiers and return rewards and group advantages in one pass.

    Shapes: ``logits`` (N, V, Lmax) float32, ``label_counts`` (V,) int, ``score_maps`` (V, Lmax) float32
    (see :func:`pack_score_maps`), ``weights`` (N, V) float32 recipe weights, ``format_rewards`` (N,)
    float32, ``available`` (N, V) bool, ``groups`` (N,) int ids or an int group size; ``format_weights``
    (N,) float32 or a scalar. The semantics are in the module docstring.
    """
    x = _prepare(
        logits,
        label_counts,
        score_maps,
        weights,
        format_rewards,
        available,
        groups,
        format_weights,
        eps,
        unbiased,
    )
    module = native_module(OP, x.logits.device)
    if module is None:
        return _reference(x, return_probabilities)
    ids = (
        x.group_ids if x.group_ids is not None else torch.empty(0, dtype=torch.int64, device=x.logits.device)
    )
    probs, scores, rewards, advantages = module.fused_score(
        x.logits,
        x.label_counts,
        x.score_maps,
        x.weights,
        x.format_rewards,
        x.format_weights,
        x.available,
        ids,
        x.group_size,
        x.eps,
        x.unbiased,
        return_probabilities,
    )
    return FusedScores(scores, rewards, advantages, probs if return_probabilities else None)
