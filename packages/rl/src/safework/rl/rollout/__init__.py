"""Rollouts: prompts -> G sampled responses each, behind one engine interface (``hf`` default, ``vllm``)."""

from safework.rl.rollout.base import (
    PromptItem,
    Rollout,
    RolloutEngine,
    RolloutSettings,
    SyncReport,
    sample_seed,
)

__all__ = ["PromptItem", "Rollout", "RolloutEngine", "RolloutSettings", "SyncReport", "sample_seed"]
