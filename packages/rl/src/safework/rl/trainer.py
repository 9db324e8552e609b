"""The SafeLadder trainer: stages run in order over one rollout / reward / advantage / loss core.

One RL step (SafeWork-R1 §2.2-2.3; CPGD, arXiv 2505.12504):

1. draw the step's prompts from the stage's mixture; sample G responses each (rollout engine);
2. score every response with the reward recipe (in-process or the reward server), chunk by chunk while the
   next chunk is generated;
3. advantages from the stage's estimator; groups with all-equal rewards, or with an item no verifier
   could score, are skipped and counted;
4. the rollout policy's log-probs of the kept responses (no gradient), then ``optim.mini_batches``
   optimiser steps of the stage's loss over them;
5. hand the new weights to the rollout engine (parity-checked), log, checkpoint.

An SFT stage (CoT-SFT, :mod:`safework.rl.sft`) distils verified traces and fine-tunes on them. Every input
is validated by :meth:`Trainer.preflight` before a model is loaded.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from safework.core.console import progress
from safework.core.errors import ConfigError
from safework.rl import checkpoint as ckpt
from safework.rl.advantages import AdvantageBatch
from safework.rl.config import RunConfig, StageConfig
from safework.rl.data import PromptMixture
from safework.rl.losses import policy_loss
from safework.rl.metrics import MetricsLog, plot_curves
from safework.rl.rewards import RewardSource, reward_source, summarise
from safework.rl.rollout.base import Rollout, RolloutEngine
from safework.verifiers.recipe import RewardBreakdown

REWARD_CHUNK = 8  # prompts per rollout chunk when rewards overlap generation


def estimators() -> dict[str, Callable[..., Any]]:
    from safework.core.plugins import collect

    return collect("register_advantage_estimators")


def estimator_for(stage: StageConfig) -> Callable[..., Any]:
    """The stage's estimator, tried once on a tiny batch so a bad name or option fails before any compute."""
    import torch

    known = estimators()
    name = stage.algorithm.estimator
    if name not in known:
        raise ConfigError(
            f"stage {stage.name!r}: unknown advantage estimator {name!r}; installed: "
            f"{', '.join(sorted(known))} (`safework rl estimators` lists them)"
        )
    estimator = known[name]
    options = dict(stage.algorithm.estimator_options)
    probe = AdvantageBatch(
        torch.tensor([0.0, 1.0, 0.5, 0.5]), torch.tensor([0, 0, 1, 1]), torch.tensor([3, 5, 2, 4])
    )
    try:
        estimator(probe, **options)
    except ConfigError as exc:
        raise ConfigError(f"stage {stage.name!r}: {exc}") from exc
    except TypeError as exc:
        raise ConfigError(
            f"stage {stage.name!r}: estimator {name!r} rejects its options {options}: {exc}"
        ) from exc

    def run(batch: AdvantageBatch) -> Any:
        return estimator(batch, **options)

    return run


@dataclass(frozen=True)
class StepResult:
    rollouts: list[Rollout]
    breakdowns: list[RewardBreakdown]


class Trainer:
    def __init__(
        self,
        config: RunConfig,
        out: Path,
        *,
        resume: Path | None = None,
        show_progress: bool = True,
        max_steps: int | None = None,
    ):
        self.config = config
        self.out = Path(out)
        self.resume_from = ckpt.find_checkpoint(Path(resume)) if resume is not None else None
        self.show_progress = show_progress
        self.max_steps = max_steps  # stop (checkpointed) after this many RL steps in all; resume continues
        self.last_checkpoint: Path | None = self.resume_from
        self.mixtures: dict[str, PromptMixture] = {}
        self.rewards: RewardSource | None = None
        self.engine: RolloutEngine | None = None
        self.state = ckpt.TrainState()
        self.log: MetricsLog | None = None

    # -- validation, before any compute ------------------------------------------------------------------
    def preflight(self) -> None:
        """Every check that needs no model: estimators and options, the recipe's verifiers (or the reward
        server), each stage's prompts, and a resumed checkpoint's model and stages."""
        for stage in self.config.stages:
            if stage.kind == "rl":
                estimator_for(stage)
                if stage.algorithm.loss.kind == "lightrft" and stage.rollout.backend != "hf":
                    raise ConfigError(f"stage {stage.name!r}: the lightrft loss needs the hf backend")
            if stage.rollout.backend == "vllm":
                raise ConfigError(
                    f"stage {stage.name!r}: rollout.backend = 'vllm' is not available in this release; "
                    "use 'hf' (the default)"
                )
            self.mixtures[stage.name] = PromptMixture(stage.data, self.config.seed)
        if self.resume_from is not None:
            meta = ckpt.read_meta(self.resume_from)
            if meta.get("base_model") != self.config.model.path:
                raise ConfigError(
                    f"checkpoint {self.resume_from} was trained from model {meta.get('base_model')!r}, but "
                    f"the config names {self.config.model.path!r}; resume with the run's own config"
                )
            stages = [s.name for s in self.config.stages]
            if meta.get("stages") != stages:
                raise ConfigError(
                    f"checkpoint {self.resume_from} belongs to a run with stages {meta.get('stages')}, the "
                    f"config has {stages}; resume with the config the run started with"
                )
        self.rewards = reward_source(self.config.reward.recipe, self.config.reward.server)

    # -- the run ---------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        import torch

        from safework.core.models.loader import LoadedModel, load_causal_lm

        self.preflight()
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        torch.manual_seed(self.config.seed)
        dtype = getattr(torch, self.config.model.dtype)
        source = self.config.model.path
        trainer_state: dict[str, Any] = {}
        if self.resume_from is not None:
            trainer_state, self.state = ckpt.load_trainer_state(self.resume_from)
            source = str(self.resume_from / "model")
        loaded = load_causal_lm(source, dtype=dtype)
        self.loaded = LoadedModel(loaded.model, loaded.tokenizer, loaded.name, loaded.source, loaded.kind)
        self.reference: Any = None
        self.engine = self._make_engine()
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2), encoding="utf-8")
        self.log = MetricsLog(
            self.out / "metrics.jsonl", self.state.global_step if self.resume_from else None
        )
        for name, cursors in self.state.cursors.items():
            if name in self.mixtures:
                self.mixtures[name].load_state(cursors)
        try:
            for index, stage in enumerate(self.config.stages):
                if index < self.state.stage_index:
                    continue
                saved = trainer_state if index == self.state.stage_index else {}
                finished = self._run_sft(stage) if stage.kind == "sft" else self._run_rl(stage, saved)
                if not finished:
                    break  # stopped at max_steps, checkpointed mid-stage
                self.state.stage_index, self.state.stage_step = index + 1, 0
                self._save({})
        finally:
            if self.rewards is not None:
                self.rewards.close()
            if self.engine is not None:
                self.engine.close()
        plot_curves(self.log.read(), self.out / "curves.png")
        return self.summary()

    def summary(self) -> dict[str, Any]:
        state, last = self.state, self.last_checkpoint
        return {
            "steps": state.global_step,
            "stages": [s.name for s in self.config.stages],
            "mean_reward_first": state.first_reward,
            "mean_reward_last": state.last_reward,
            "zero_variance_share": state.zero_variance_groups / state.groups if state.groups else None,
            "checkpoint": str(last / "model") if last is not None else None,
            "metrics": str(self.out / "metrics.jsonl"),
            "curves": str(self.out / "curves.png"),
        }

    def _make_engine(self) -> RolloutEngine:
        from safework.rl.rollout.hf import HFRolloutEngine

        engine = HFRolloutEngine(self.loaded)
        self.sync_engine(engine)
        return engine

    def sync_engine(self, engine: RolloutEngine) -> None:
        report = engine.sync(self.loaded.model)
        if not report.ok:
            raise RuntimeError(
                f"weight sync to the {engine.name} rollout engine failed its parity check: probe log-probs "
                f"differ by {report.max_abs_diff:.4g} (tolerance {report.tolerance:g}); the engine would "
                "sample from stale weights, so the run stops here"
            )

    def _save(self, trainer_state: dict[str, Any]) -> Path:
        self.state.cursors = {name: m.state() for name, m in self.mixtures.items()}
        meta = {
            "base_model": self.config.model.path,
            "model_name": self.loaded.name,
            "stages": [s.name for s in self.config.stages],
            "state": {
                "stage_index": self.state.stage_index,
                "stage_step": self.state.stage_step,
                "global_step": self.state.global_step,
            },
        }
        self.last_checkpoint = ckpt.save_checkpoint(
            self.out,
            self.loaded.model,
            self.loaded.tokenizer,
            trainer_state,
            self.state,
            meta,
            self.config.checkpoint.keep,
        )
        return self.last_checkpoint

    # -- RL --------------------------------------------------------------------------------------------------
    def optimiser_for(self, stage: StageConfig, total_updates: int) -> tuple[Any, Any]:
        import torch

        optim = stage.optim
        optimiser = torch.optim.AdamW(
            [p for p in self.loaded.model.parameters() if p.requires_grad],
            lr=optim.lr,
            weight_decay=optim.weight_decay,
        )
        warmup = max(1, math.ceil(optim.warmup_ratio * total_updates)) if optim.warmup_ratio else 0

        def factor(update: int) -> float:
            return min(1.0, (update + 1) / warmup) if warmup else 1.0

        return optimiser, torch.optim.lr_scheduler.LambdaLR(optimiser, factor)

    def _run_rl(self, stage: StageConfig, saved: dict[str, Any]) -> bool:
        """The stage's remaining steps; False when ``max_steps`` stopped it early (after a checkpoint)."""
        estimate = estimator_for(stage)
        optimiser, scheduler = self.optimiser_for(stage, stage.steps * stage.optim.mini_batches)
        if saved:
            optimiser.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
        if stage.algorithm.loss.kind == "lightrft" and self.reference is None:
            self.reference = _frozen_copy(self.config.model.path, self.loaded.model.dtype)
        bar = progress() if self.show_progress else None
        with bar or contextlib.nullcontext():
            task = (
                bar.add_task(f"{stage.name} (rl)", total=stage.steps, completed=self.state.stage_step)
                if bar
                else None
            )
            while self.state.stage_step < stage.steps:
                record = self._rl_step(stage, estimate, optimiser, scheduler)
                self.state.stage_step += 1
                self.state.global_step += 1
                assert self.log is not None
                self.log.write({"step": self.state.global_step, "stage": stage.name, "kind": "rl", **record})
                if bar is not None and task is not None:
                    bar.update(
                        task, advance=1, description=f"{stage.name} (rl) reward {record['reward']:.3f}"
                    )
                stop = self.max_steps is not None and self.state.global_step >= self.max_steps
                more = self.state.stage_step < stage.steps
                if more and (stop or self.state.stage_step % self.config.checkpoint.every == 0):
                    self._save({"optimizer": optimiser.state_dict(), "scheduler": scheduler.state_dict()})
                if stop and more:
                    return False
        return True

    def _rollout_and_score(self, stage: StageConfig) -> StepResult:
        """Generate the step's rollouts chunk by chunk; score each chunk while the next one generates."""
        assert self.engine is not None and self.rewards is not None
        items = self.mixtures[stage.name].draw(stage.prompts_per_step)
        settings = stage.rollout.settings()
        chunk = REWARD_CHUNK if self.config.reward.overlap else len(items)
        rollouts: list[Rollout] = []
        futures: list[concurrent.futures.Future[list[RewardBreakdown]]] = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            for start in range(0, len(items), chunk):
                part = self.engine.generate(
                    items[start : start + chunk], settings, self.config.seed, self.state.global_step
                )
                part = [replace(r, group=r.group + start) for r in part]
                rollouts.extend(part)
                futures.append(pool.submit(self.rewards.score, part))
            breakdowns = [b for future in futures for b in future.result()]
        return StepResult(rollouts, breakdowns)

    def _rl_step(
        self, stage: StageConfig, estimate: Callable[..., Any], optimiser: Any, scheduler: Any
    ) -> dict[str, Any]:
        import torch

        started = time.perf_counter()
        result = self._rollout_and_score(stage)
        rollouts, breakdowns = result.rollouts, result.breakdowns
        generated = time.perf_counter()
        rewards = torch.tensor(
            [b.total if b.total is not None else 0.0 for b in breakdowns], dtype=torch.float32
        )
        groups = torch.tensor([r.group for r in rollouts], dtype=torch.long)
        lengths = torch.tensor([r.length for r in rollouts], dtype=torch.long)
        batch = AdvantageBatch(rewards, groups, lengths)
        advantages = torch.as_tensor(estimate(batch), dtype=torch.float32)
        failed_groups = {r.group for r, b in zip(rollouts, breakdowns, strict=True) if b.total is None}
        zero = batch.zero_variance()
        keep = [
            i
            for i, r in enumerate(rollouts)
            if r.group not in failed_groups and not bool(zero[i]) and r.length > 0
        ]
        n_groups = len({r.group for r in rollouts})
        zero_groups = len(
            {r.group for i, r in enumerate(rollouts) if bool(zero[i]) and r.group not in failed_groups}
        )
        self.state.groups += n_groups
        self.state.zero_variance_groups += zero_groups
        self.state.failed_groups += len(failed_groups)
        update = self._update(
            stage,
            [rollouts[i] for i in keep],
            advantages[keep] if keep else advantages[:0],
            optimiser,
            scheduler,
        )
        finished = time.perf_counter()
        summary = summarise(breakdowns)
        if self.state.first_reward is None:
            self.state.first_reward = summary.mean
        self.state.last_reward = summary.mean
        new_tokens = sum(r.length for r in rollouts)
        return {
            **summary.flat(),
            "groups": n_groups,
            "zero_variance_share": zero_groups / n_groups,
            "failed_groups": len(failed_groups),
            "kept_responses": len(keep),
            "length_mean": new_tokens / len(rollouts),
            "truncated_share": sum(r.truncated for r in rollouts) / len(rollouts),
            "advantage_abs_mean": float(advantages.abs().mean()),
            **update,
            "lr": float(scheduler.get_last_lr()[0]),
            "rollout_s": generated - started,
            "update_s": finished - generated,
            "response_tokens": new_tokens,
            "tokens_per_s": new_tokens / (finished - started),  # sampled tokens per second of the whole step
        }

    def _rows(self, rollouts: Sequence[Rollout]) -> list[tuple[Sequence[int], Sequence[int]]]:
        return [(r.prompt_ids, r.response_ids) for r in rollouts]

    def pad_id(self) -> int:
        pad = self.loaded.tokenizer.pad_token_id
        return int(pad) if isinstance(pad, int) else 0

    def _update(
        self, stage: StageConfig, rollouts: list[Rollout], advantages: Any, optimiser: Any, scheduler: Any
    ) -> dict[str, Any]:
        """``mini_batches`` optimiser steps over the kept rollouts (old log-probs first, without gradient)."""
        import torch

        from safework.core.models.logprobs import token_logprobs

        stats: dict[str, list[float]] = {}
        if not rollouts:
            return {}  # every group was skipped: no update (the schedule counts updates taken)
        model = self.loaded.model
        temperature = stage.rollout.temperature
        chunks = [c.tolist() for c in torch.arange(len(rollouts)).chunk(stage.optim.mini_batches)]
        with torch.no_grad():
            model.eval()
            old = [
                token_logprobs(
                    model, self._rows([rollouts[i] for i in c]), pad_id=self.pad_id(), temperature=temperature
                )
                for c in chunks
            ]
            ref = None
            if self.reference is not None:
                ref = [
                    token_logprobs(
                        self.reference,
                        self._rows([rollouts[i] for i in c]),
                        pad_id=self.pad_id(),
                        temperature=temperature,
                    ).logprobs
                    for c in chunks
                ]
        model.train()
        for k, chunk in enumerate(chunks):
            current = token_logprobs(
                model,
                self._rows([rollouts[i] for i in chunk]),
                pad_id=self.pad_id(),
                temperature=temperature,
                with_entropy=True,
            )
            out = policy_loss(
                current.logprobs,
                old[k].logprobs,
                advantages[chunk],
                current.mask,
                stage.algorithm.loss,
                None if ref is None else ref[k],
            )
            optimiser.zero_grad(set_to_none=True)
            out.loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), stage.optim.max_grad_norm)
            optimiser.step()
            scheduler.step()
            tokens = float(current.mask.sum())
            assert current.entropy is not None
            for key, value in {
                **out.stats,
                "loss": out.loss.item(),
                "grad_norm": float(norm),
                "entropy": float(current.entropy.sum()) / max(tokens, 1.0),
            }.items():
                stats.setdefault(key, []).append(float(value))
        model.eval()
        assert self.engine is not None
        self.sync_engine(self.engine)
        return {key: sum(v) / len(v) for key, v in stats.items()}

    # -- SFT -------------------------------------------------------------------------------------------------
    def _run_sft(self, stage: StageConfig) -> bool:
        from safework.rl.sft import run_sft_stage

        assert self.rewards is not None and self.log is not None
        record = run_sft_stage(self, stage)
        self.log.write({"step": self.state.global_step, "stage": stage.name, "kind": "sft", **record})
        return True


def _frozen_copy(spec: str, dtype: Any) -> Any:
    """The reference policy for the LightRFT-parity KL: the run's starting model, frozen."""
    from safework.core.models.loader import load_causal_lm

    reference = load_causal_lm(spec, dtype=dtype).model
    for parameter in reference.parameters():
        parameter.requires_grad_(False)
    return reference.eval()
