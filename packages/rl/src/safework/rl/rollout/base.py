"""The rollout contract: training prompts in, G sampled responses per prompt out, as token ids.

A backend (``transformers`` generate in the trainer's process, or a vLLM server in its own environment) only
samples. The trainer scores the sampled tokens itself with ``safework.core.models.logprobs`` before any
update, so the rollout policy's log-probs (``old_logp``) come from the exact weights being trained, whatever
the backend's numerics; a backend's own log-probs serve the weight-sync parity check only.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from safework.core.errors import ConfigError
from safework.rl.evaluation.decodings import THINK_SYSTEM_PROMPT

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class PromptItem:
    """One training prompt: its task label picks the reward recipe (SafeWork-R1 §4); ``metadata`` reaches the
    verifiers (e.g. ``query_type`` harmful/benign for the safety verifier)."""

    prompt: str
    task_label: str
    reference: str | None = None
    source: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rollout:
    """One sampled response. ``response_ids`` end with the stop token when the model stopped on its own."""

    group: int  # index of the prompt in the rollout call: responses to one prompt share it
    sample: int  # 0 .. G-1 within the group
    item: PromptItem
    text: str  # decoded response, stop token excluded
    prompt_ids: tuple[int, ...]
    response_ids: tuple[int, ...]
    finish_reason: FinishReason

    @property
    def length(self) -> int:
        return len(self.response_ids)

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


@dataclass(frozen=True)
class RolloutSettings:
    """How responses are sampled. ``system`` is the SafeLadder reasoning prompt unless set (None: the chat
    template's own system turn)."""

    samples: int = 4  # G, responses per prompt
    max_new_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    system: str | None = THINK_SYSTEM_PROMPT
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ConfigError(f"rollout.samples must be >= 1 (got {self.samples}); group methods need >= 2")
        if self.max_new_tokens < 1:
            raise ConfigError(f"rollout.max_new_tokens must be >= 1 (got {self.max_new_tokens})")
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise ConfigError(
                f"rollout.temperature must be > 0 (got {self.temperature}): RL samples from the policy; "
                "greedy rollouts would give every response of a group the same text"
            )
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"rollout.top_p must be in (0, 1] (got {self.top_p})")
        if self.batch_size < 1:
            raise ConfigError(f"rollout.batch_size must be >= 1 (got {self.batch_size})")


def sample_seed(seed: int, step: int, prompt: str, sample: int) -> int:
    """A response's sampling seed, fixed by the run seed, the step, the prompt text and the sample index:
    a resumed run samples exactly what the uninterrupted one did."""
    digest = hashlib.sha256(f"{seed}:{step}:{sample}:{prompt}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


def encode_requests(
    items: Sequence[PromptItem], settings: RolloutSettings, tokenizer: Any, seed: int, step: int
) -> tuple[dict[str, tuple[int, ...]], list[int]]:
    """What every backend sends its sampler: each prompt's token ids (built as ``generate_chat`` builds them,
    so all backends score the same context) and one seed per response, G per item, in item order."""
    from safework.core.models.generation import prompt_ids

    encoded = {item.prompt: tuple(prompt_ids(tokenizer, item.prompt, settings.system)) for item in items}
    seeds = [sample_seed(seed, step, item.prompt, k) for item in items for k in range(settings.samples)]
    return encoded, seeds


@dataclass(frozen=True)
class SyncReport:
    """The weight-sync parity check: the engine's and the trainer's log-probs of a fixed probe sequence."""

    max_abs_diff: float
    tolerance: float
    seconds: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance


class RolloutEngine(Protocol):
    """What the trainer needs from a backend."""

    name: str

    def generate(
        self, items: Sequence[PromptItem], settings: RolloutSettings, seed: int, step: int
    ) -> list[Rollout]:
        """``settings.samples`` responses per item, grouped by item (group = item index), in input order."""
        ...

    def sync(self, model: Any) -> SyncReport:
        """Make the engine sample from ``model``'s current weights, then check parity; raise if it fails."""
        ...

    def close(self) -> None: ...
