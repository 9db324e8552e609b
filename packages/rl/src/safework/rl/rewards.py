"""Rewards for rollouts: the recipe (SafeWork-R1 §4), scored in-process or by the gRPC reward server.

Both paths end in ``safework.verifiers.recipe.compose``, the only function that turns verifier scores into
a total, so a run gets the same rewards whichever it uses (``tests/rl/test_rewards.py`` pins it).

**Phantom advantages.** A group whose responses all fail earns nearly identical shaped rewards (e.g. the
safety map's 0.01 for an illogical answer next to 0 for a parse failure); normalising such a group by its
tiny standard deviation would turn noise into full-size advantages. The recipe avoids it twice: verifier
scores are graded expectations over label probabilities, so a group that differs at all differs by a
meaningful amount, and groups whose rewards are *exactly* equal are skipped by the estimators and counted
(``zero_variance_share``). Items a verifier failed on have no reward; their whole group is dropped from the
update and counted (``reward_failures``), never scored with a made-up value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from safework.core.errors import ConfigError
from safework.rl.rollout.base import Rollout
from safework.verifiers.base import VerifierItem
from safework.verifiers.recipe import DEFAULT_RECIPE_PATH, Recipe, RecipeScorer, RewardBreakdown


def rollout_item(rollout: Rollout) -> VerifierItem:
    """What the verifiers see: the prompt, the decoded response, the reference and the task label."""
    item = rollout.item
    return VerifierItem(
        item.prompt, rollout.text, item.reference, {**item.metadata, "task_label": item.task_label}
    )


class RewardSource(Protocol):
    def score(self, rollouts: Sequence[Rollout]) -> list[RewardBreakdown]: ...

    def close(self) -> None: ...


class LocalRewards:
    """The recipe's verifiers in this process (each loaded once, run over the items that need it)."""

    def __init__(self, recipe: Recipe) -> None:
        self.scorer = RecipeScorer(recipe)

    def score(self, rollouts: Sequence[Rollout]) -> list[RewardBreakdown]:
        return self.scorer.score([rollout_item(r) for r in rollouts])

    def close(self) -> None:
        return None


class RemoteRewards:
    """A reward server (``safework verifiers serve``): batches across requests, composes the same way."""

    def __init__(self, address: str, timeout: float = 600.0) -> None:
        from safework.verifiers.server import RewardClient

        self.client = RewardClient(address, timeout=timeout)
        status = self.client.health()
        if status != "SERVING":
            self.client.close()
            raise ConfigError(
                f"the reward server at {address} reports {status}; start it with `safework verifiers serve` "
                "or leave reward.server empty to score in-process"
            )

    def score(self, rollouts: Sequence[Rollout]) -> list[RewardBreakdown]:
        return self.client.rewards([rollout_item(r) for r in rollouts])

    def close(self) -> None:
        self.client.close()


def load_recipe(name: str) -> Recipe:
    """``default`` (the paper's table, shipped with safework-verifiers) or a recipe TOML path."""
    return Recipe.load(DEFAULT_RECIPE_PATH if name == "default" else Path(name))


def reward_source(recipe: str, server: str = "") -> RewardSource:
    return RemoteRewards(server) if server else LocalRewards(load_recipe(recipe))


@dataclass(frozen=True)
class RewardSummary:
    """Means of a batch's rewards: total, format term, and every component, over the items that scored."""

    mean: float
    format: float
    components: dict[str, float]
    per_label: dict[str, float]
    failures: int

    def flat(self) -> dict[str, float]:
        out = {"reward": self.mean, "reward_format": self.format, "reward_failures": float(self.failures)}
        out.update({f"reward_{name}": value for name, value in self.components.items()})
        out.update({f"reward_label_{label}": value for label, value in self.per_label.items()})
        return out


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def summarise(breakdowns: Sequence[RewardBreakdown]) -> RewardSummary:
    scored = [b for b in breakdowns if b.total is not None]
    components: dict[str, list[float]] = {}
    labels: dict[str, list[float]] = {}
    for b in scored:
        for name, value in b.scores.items():
            components.setdefault(name, []).append(value)
        labels.setdefault(b.task_label, []).append(float(b.total or 0.0))
    return RewardSummary(
        mean=_mean([float(b.total or 0.0) for b in scored]),
        format=_mean([b.format_score for b in scored if b.format_score is not None]),
        components={k: _mean(v) for k, v in sorted(components.items())},
        per_label={k: _mean(v) for k, v in sorted(labels.items())},
        failures=len(breakdowns) - len(scored),
    )
