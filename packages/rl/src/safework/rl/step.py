"""One RL step: rollout -> reward -> advantage -> mini-batch updates (SafeWork-R1 §2.2-2.3, CPGD §3).

1. This rank rolls out its share of the step's prompts; rewards of one chunk are scored while the next chunk
   is generated.
2. The (group, reward, length) rows of all ranks are gathered and the stage's estimator computes global
   advantages. Groups whose rewards are all equal carry no signal and are skipped; so are groups in which a
   verifier failed on some response (no reward is invented). Both are counted.
3. The kept groups are dealt to ``optim.mini_batches`` mini-batches (the j-th kept group to mini-batch j mod
   M): the same assignment on one process or many, so a distributed step equals the single-process one.
4. Old log-probs of every kept response are computed before the first update; then one optimiser step per
   mini-batch. The first mini-batch's ratios are exactly 1; CPGD's clip and drift act from the second on.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from safework.rl.advantages import AdvantageBatch
from safework.rl.config import StageConfig
from safework.rl.losses import policy_loss
from safework.rl.rewards import summarise
from safework.rl.rollout.base import Rollout
from safework.verifiers.recipe import RewardBreakdown

if TYPE_CHECKING:
    from safework.rl.trainer import Trainer

REWARD_CHUNK = 8  # prompts per rollout chunk when rewards overlap generation


@dataclass(frozen=True)
class Row:
    """What every rank needs to know about every response for the global advantage and the plan."""

    group: int
    reward: float | None  # None: a verifier failed on this response
    length: int  # response tokens, all of which count in the loss
    truncated: bool


def rollout_and_score(trainer: Trainer, stage: StageConfig) -> tuple[list[Rollout], list[RewardBreakdown]]:
    assert trainer.engine is not None and trainer.rewards is not None
    drawn = trainer.mixtures[stage.name].draw(stage.prompts_per_step)
    share = trainer.parallel.share(len(drawn))
    items = [drawn[i] for i in share]
    settings = stage.rollout.settings()
    chunk = REWARD_CHUNK if trainer.config.reward.overlap else len(items)
    rollouts: list[Rollout] = []
    futures: list[concurrent.futures.Future[list[RewardBreakdown]]] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        for start in range(0, len(items), chunk):
            with trainer.parallel.full_parameters(trainer.loaded.model):  # ZeRO-3: gather once, then sample
                part = trainer.engine.generate(
                    items[start : start + chunk], settings, trainer.config.seed, trainer.state.global_step
                )
            part = [replace(r, group=r.group + share.start + start) for r in part]
            rollouts.extend(part)
            futures.append(pool.submit(trainer.rewards.score, part))
        breakdowns = [b for future in futures for b in future.result()]
    return rollouts, breakdowns


def plan(rows: Sequence[Row], zero: Any, mini_batches: int) -> tuple[list[int], list[int]]:
    """(kept global indices, mini-batch of each kept index): failed and zero-variance groups are dropped, as
    are empty responses; kept groups are dealt round-robin to the mini-batches in group order."""
    failed = {r.group for r in rows if r.reward is None}
    kept = [i for i, r in enumerate(rows) if r.group not in failed and not bool(zero[i]) and r.length > 0]
    order = {g: j for j, g in enumerate(sorted({rows[i].group for i in kept}))}
    return kept, [order[rows[i].group] % mini_batches for i in kept]


def rl_step(
    trainer: Trainer, stage: StageConfig, estimate: Callable[..., Any], scheduler: Any
) -> dict[str, Any]:
    import torch

    parallel = trainer.parallel
    started = time.perf_counter()
    rollouts, breakdowns = rollout_and_score(trainer, stage)
    generated = time.perf_counter()
    local = [Row(r.group, b.total, r.length, r.truncated) for r, b in zip(rollouts, breakdowns, strict=True)]
    rows = parallel.gather(local)
    offset = parallel.gather([len(local)])[: parallel.rank]
    mine = range(sum(offset), sum(offset) + len(local))  # this rank's rows in the global order
    batch = AdvantageBatch(
        torch.tensor([r.reward if r.reward is not None else 0.0 for r in rows], dtype=torch.float32),
        torch.tensor([r.group for r in rows], dtype=torch.long),
        torch.tensor([r.length for r in rows], dtype=torch.long),
    )
    advantages = torch.as_tensor(estimate(batch), dtype=torch.float32)
    zero = batch.zero_variance()
    kept, assigned = plan(rows, zero, stage.optim.mini_batches)
    update = update_policy(trainer, stage, rollouts, rows, mine, kept, assigned, advantages, scheduler)
    finished = time.perf_counter()

    groups = {r.group for r in rows}
    failed = {r.group for r in rows if r.reward is None}
    zero_groups = {r.group for i, r in enumerate(rows) if bool(zero[i])} - failed
    state = trainer.state
    state.groups += len(groups)
    state.zero_variance_groups += len(zero_groups)
    state.failed_groups += len(failed)
    summary = summarise(parallel.gather(breakdowns))
    state.first_reward = summary.mean if state.first_reward is None else state.first_reward
    state.last_reward = summary.mean
    tokens = sum(r.length for r in rows)
    return {
        **summary.flat(),
        "groups": len(groups),
        "zero_variance_share": len(zero_groups) / len(groups),
        "failed_groups": len(failed),
        "kept_responses": len(kept),
        "length_mean": tokens / len(rows),
        "truncated_share": sum(r.truncated for r in rows) / len(rows),
        "advantage_abs_mean": float(advantages.abs().mean()),
        **update,
        "lr": float(scheduler.get_last_lr()[0]),
        "rollout_s": generated - started,
        "update_s": finished - generated,
        "response_tokens": tokens,
        "tokens_per_s": tokens / (finished - started),  # sampled tokens per second of the whole step
    }


def _rows_of(rollouts: Sequence[Rollout]) -> list[tuple[Sequence[int], Sequence[int]]]:
    return [(r.prompt_ids, r.response_ids) for r in rollouts]


def update_policy(
    trainer: Trainer,
    stage: StageConfig,
    rollouts: Sequence[Rollout],
    rows: Sequence[Row],
    mine: range,
    kept: Sequence[int],
    assigned: Sequence[int],
    advantages: Any,
    scheduler: Any,
) -> dict[str, float]:
    """One optimiser step per non-empty mini-batch; the mean of each loss statistic over them."""
    import torch

    from safework.core.models.logprobs import token_logprobs

    model, parallel, loss_config = trainer.loaded.model, trainer.parallel, stage.algorithm.loss
    temperature, pad = stage.rollout.temperature, trainer.pad_id()
    by_token = loss_config.aggregation == "token-mean"
    batches: list[tuple[list[int], float]] = []  # (this rank's members, local indices; the global weight)
    for k in range(stage.optim.mini_batches):
        members = [i for i, a in zip(kept, assigned, strict=True) if a == k]
        if members:
            weight = float(sum(rows[i].length for i in members) if by_token else len(members))
            batches.append(([i - mine.start for i in members if i in mine], weight))
    if not batches:
        return {}  # every group was skipped: no update (the schedule counts updates taken)

    def score(module: Any, local: list[int], **options: Any) -> Any:
        return token_logprobs(
            module, _rows_of([rollouts[i] for i in local]), pad_id=pad, temperature=temperature, **options
        )

    with torch.no_grad():
        model.eval()
        # The first mini-batch is scored before any update, so its old log-probs are its current ones
        # (detached): only the later mini-batches need a pass of their own.
        old = [score(model, local).logprobs if local and k else None for k, (local, _) in enumerate(batches)]
        ref = [
            score(trainer.reference, local).logprobs if local and trainer.reference is not None else None
            for local, _ in batches
        ]
    model.train()
    stats: dict[str, list[float]] = {}
    for (local, weight), old_logp, ref_logp in zip(batches, old, ref, strict=True):
        if not local:  # join the collective step with a zero-weighted pass over one of our responses
            scored = score(model, [0])
            loss = scored.logprobs.sum() * 0.0
            parallel.backward_step(model, loss, trainer.optimiser, stage.optim.max_grad_norm)
            scheduler.step()
            continue
        current = score(model, local, with_entropy=True)
        out = policy_loss(
            current.logprobs,
            current.logprobs.detach() if old_logp is None else old_logp,
            advantages[[mine.start + i for i in local]],
            current.mask,
            loss_config,
            ref_logp,
        )
        mine_weight = float(current.mask.sum()) if by_token else float(len(local))
        scale = parallel.world * mine_weight / weight  # ranks' gradients are averaged: rescale to the mean
        norm = parallel.backward_step(model, out.loss * scale, trainer.optimiser, stage.optim.max_grad_norm)
        scheduler.step()
        tokens = float(current.mask.sum())
        assert current.entropy is not None
        for key, value in {
            **out.stats,
            "loss": out.loss.item(),
            "grad_norm": norm,
            "entropy": float(current.entropy.sum()) / max(tokens, 1.0),
        }.items():
            stats.setdefault(key, []).append(float(value))
    model.eval()
    return {**{key: sum(v) / len(v) for key, v in stats.items()}, "sync_max_abs_diff": trainer.sync_engine()}
