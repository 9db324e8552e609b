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

import contextlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safework.core.console import progress
from safework.core.errors import ConfigError
from safework.rl import checkpoint as ckpt
from safework.rl.advantages import AdvantageBatch
from safework.rl.config import RunConfig, StageConfig
from safework.rl.data import PromptMixture
from safework.rl.distributed import Parallel, launched_world, parallel_for
from safework.rl.metrics import MetricsLog, plot_curves
from safework.rl.rewards import RewardSource, reward_source
from safework.rl.rollout.base import RolloutEngine


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
        self.parallel: Parallel = Parallel()
        self.optimiser: Any = None
        self.reference: Any = None

    # -- validation, before any compute ------------------------------------------------------------------
    def preflight(self) -> None:
        """Every check that needs no model: estimators and options, the recipe's verifiers (or the reward
        server), each stage's prompts, and a resumed checkpoint's model and stages."""
        for stage in self.config.stages:
            if stage.kind == "rl":
                estimator_for(stage)
                if stage.algorithm.loss.kind == "lightrft" and stage.rollout.backend != "hf":
                    raise ConfigError(f"stage {stage.name!r}: the lightrft loss needs the hf backend")
            self.mixtures[stage.name] = PromptMixture(stage.data, self.config.seed)
        backends = {s.rollout.backend for s in self.config.stages if s.kind == "rl"}
        if len(backends) > 1:
            raise ConfigError(
                f"the rl stages ask for different rollout backends ({', '.join(sorted(backends))}); a run "
                "has one rollout engine: set rollout.backend once, in the run-wide [rollout] table"
            )
        if "vllm" in backends:
            from safework.rl.rollout.vllm import vllm_python

            vllm_python()  # no vLLM venv: fail now, naming `make test-vllm`
            if launched_world() > 1:
                raise ConfigError(
                    "the vllm rollout backend runs one server for one trainer process; launch without "
                    "torchrun/deepspeed, or use rollout.backend = 'hf' for a distributed run"
                )
        if self.resume_from is None and (self.out / "checkpoints" / ckpt.LATEST).exists():
            raise ConfigError(
                f"{self.out} already holds a training run; continue it with --resume {self.out}, or pass a "
                "new --out folder"
            )
        if self.resume_from is not None and launched_world() > 1:
            raise ConfigError(
                "exact resume is single-process in this release: resume without torchrun/deepspeed, or "
                "start the distributed run from the checkpoint's model (model.path = <checkpoint>/model)"
            )
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
        self.parallel = parallel_for(self.config.distributed.zero_stage)
        dtype = getattr(torch, self.config.model.dtype)
        source = self.config.model.path
        saved: dict[str, Any] = {}
        if self.resume_from is not None:
            saved, self.state = ckpt.load_trainer_state(self.resume_from)
            source = str(self.resume_from / "model")
        loaded = load_causal_lm(source, dtype=dtype)
        self.loaded = LoadedModel(loaded.model, loaded.tokenizer, loaded.name, loaded.source, loaded.kind)
        self.optimiser = torch.optim.AdamW([p for p in loaded.model.parameters() if p.requires_grad])
        if saved.get("optimizer"):
            self.optimiser.load_state_dict(saved["optimizer"])
        model = self.parallel.wrap(
            loaded.model, self.optimiser, self.config.stages[0].optim.max_grad_norm, dtype == torch.bfloat16
        )
        self.loaded = LoadedModel(model, loaded.tokenizer, loaded.name, loaded.source, loaded.kind)
        self.engine = self._make_engine()
        if self.parallel.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(
                json.dumps(self.config.to_dict(), indent=2), encoding="utf-8"
            )
        self.log = (
            MetricsLog(self.out / "metrics.jsonl", self.state.global_step if self.resume_from else None)
            if self.parallel.is_main
            else None
        )
        for name, cursors in self.state.cursors.items():
            if name in self.mixtures:
                self.mixtures[name].load_state(cursors)
        try:
            for index, stage in enumerate(self.config.stages):
                if index < self.state.stage_index:
                    continue
                resumed = saved.get("scheduler") if index == self.state.stage_index else None
                finished = self._run_sft(stage) if stage.kind == "sft" else self._run_rl(stage, resumed)
                if not finished:
                    break  # stopped at max_steps, checkpointed mid-stage
                self.state.stage_index, self.state.stage_step = index + 1, 0
                self._save(None)
        finally:
            if self.rewards is not None:
                self.rewards.close()
            if self.engine is not None:
                self.engine.close()
        if self.log is not None:
            plot_curves(self.log.read(), self.out / "curves.png")
        return self.summary()

    def summary(self) -> dict[str, Any]:
        """What the run did: steps, the mean recipe reward of its first and last RL step (and per component),
        and the checkpoint that ``safework rl eval --model`` takes."""
        state, last = self.state, self.last_checkpoint
        rl = [r for r in (self.log.read() if self.log is not None else []) if r.get("kind") == "rl"]
        components = sorted(
            {
                k
                for r in rl
                for k in r
                if k.startswith("reward_") and k != "reward_failures" and "label_" not in k
            }
        )
        return {
            "steps": state.global_step,
            "stages": [s.name for s in self.config.stages],
            "mean_reward_first": state.first_reward,
            "mean_reward_last": state.last_reward,
            "components_first": {k[7:]: rl[0].get(k) for k in components} if rl else {},
            "components_last": {k[7:]: rl[-1].get(k) for k in components} if rl else {},
            "zero_variance_share": state.zero_variance_groups / state.groups if state.groups else None,
            "checkpoint": str(last / "model") if last is not None else None,
            "metrics": str(self.out / "metrics.jsonl"),
            "curves": str(self.out / "curves.png"),
        }

    def _make_engine(self) -> RolloutEngine:
        if any(s.kind == "rl" and s.rollout.backend == "vllm" for s in self.config.stages):
            from safework.rl.rollout.vllm import VLLMRolloutEngine

            self.engine = VLLMRolloutEngine(self.loaded, dtype=self.config.model.dtype)
        else:
            from safework.rl.rollout.hf import HFRolloutEngine

            self.engine = HFRolloutEngine(self.loaded)
        self.sync_engine()  # a resumed run's engine starts from the resumed weights, checked
        return self.engine

    def sync_engine(self) -> float:
        """Hand the current weights to the rollout engine; stop the run if its parity check fails."""
        assert self.engine is not None
        report = self.engine.sync(self.loaded.model)
        if not report.ok:
            raise RuntimeError(
                f"weight sync to the {self.engine.name} rollout engine failed its parity check: probe "
                f"log-probs differ by {report.max_abs_diff:.4g} (tolerance {report.tolerance:g}); the engine "
                "would sample from stale weights, so the run stops here"
            )
        return report.max_abs_diff

    def _save(self, scheduler: Any) -> Path | None:
        """Checkpoint (rank 0 writes; under ZeRO-3 every rank first gathers the parameters)."""
        trainer_state = {"optimizer": self.optimiser.state_dict() if self.parallel.world == 1 else None}
        trainer_state["scheduler"] = scheduler.state_dict() if scheduler is not None else None
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
        with self.parallel.full_parameters(self.loaded.model):
            if self.parallel.is_main:
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
    def begin_stage(
        self, stage: StageConfig, total_updates: int, resumed: dict[str, Any] | None = None
    ) -> Any:
        """Point the run's one optimiser at the stage's settings; the stage's warm-up schedule."""
        import torch

        for group in self.optimiser.param_groups:
            group["lr"] = group["initial_lr"] = stage.optim.lr
            group["weight_decay"] = stage.optim.weight_decay
        warmup = (
            max(1, math.ceil(stage.optim.warmup_ratio * total_updates)) if stage.optim.warmup_ratio else 0
        )

        def factor(update: int) -> float:
            return min(1.0, (update + 1) / warmup) if warmup else 1.0

        scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimiser, factor)
        if resumed:
            scheduler.load_state_dict(resumed)
            for group, lr in zip(self.optimiser.param_groups, scheduler.get_last_lr(), strict=True):
                group["lr"] = lr  # where the schedule had got to, not its first value
        return scheduler

    def _run_rl(self, stage: StageConfig, resumed: dict[str, Any] | None) -> bool:
        """The stage's remaining steps; False when ``max_steps`` stopped it early (after a checkpoint)."""
        from safework.rl.step import rl_step

        estimate = estimator_for(stage)
        scheduler = self.begin_stage(stage, stage.steps * stage.optim.mini_batches, resumed)
        if stage.algorithm.loss.kind == "lightrft" and self.reference is None:
            self.reference = _frozen_copy(self.config.model.path, self.loaded.model.dtype)
        bar = progress() if self.show_progress and self.parallel.is_main else None
        with bar or contextlib.nullcontext():
            task = (
                bar.add_task(f"{stage.name} (rl)", total=stage.steps, completed=self.state.stage_step)
                if bar
                else None
            )
            while self.state.stage_step < stage.steps:
                record = rl_step(self, stage, estimate, scheduler)
                self.state.stage_step += 1
                self.state.global_step += 1
                if self.log is not None:
                    self.log.write(
                        {"step": self.state.global_step, "stage": stage.name, "kind": "rl", **record}
                    )
                if bar is not None and task is not None:
                    bar.update(
                        task, advance=1, description=f"{stage.name} (rl) reward {record['reward']:.3f}"
                    )
                stop = self.max_steps is not None and self.state.global_step >= self.max_steps
                more = self.state.stage_step < stage.steps
                if more and (stop or self.state.stage_step % self.config.checkpoint.every == 0):
                    self._save(scheduler)
                if stop and more:
                    return False
        return True

    def pad_id(self) -> int:
        pad = self.loaded.tokenizer.pad_token_id
        return int(pad) if isinstance(pad, int) else 0

    # -- SFT -------------------------------------------------------------------------------------------------
    def _run_sft(self, stage: StageConfig) -> bool:
        from safework.rl.sft import run_sft_stage

        record = run_sft_stage(self, stage)
        if self.log is not None:
            self.log.write({"step": self.state.global_step, "stage": stage.name, "kind": "sft", **record})
        return True


def _frozen_copy(spec: str, dtype: Any) -> Any:
    """The reference policy for the LightRFT-parity KL: the run's starting model, frozen."""
    from safework.core.models.loader import load_causal_lm

    reference = load_causal_lm(spec, dtype=dtype).model
    for parameter in reference.parameters():
        parameter.requires_grad_(False)
    return reference.eval()
