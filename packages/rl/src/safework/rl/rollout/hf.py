"""The default rollout backend: the core generation loop (batched, KV cache) on the trainer's own model.

The engine holds the trainer's model object, so a weight update is visible to the next rollout without a
copy, and a resumed run's engine is built on the resumed model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from safework.core.errors import ConfigError
from safework.core.models.generation import Decoding, generate_chat
from safework.core.models.loader import LoadedModel
from safework.rl.rollout.base import PromptItem, Rollout, RolloutSettings, SyncReport, encode_requests
from safework.rl.rollout.parity import PROBE_TOLERANCE


class HFRolloutEngine:
    name = "hf"

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded

    def generate(
        self, items: Sequence[PromptItem], settings: RolloutSettings, seed: int, step: int
    ) -> list[Rollout]:
        import torch

        if not items:
            raise ConfigError("no prompts to roll out; the stage's data yielded none")
        prompts = [item.prompt for item in items for _ in range(settings.samples)]
        encoded, seeds = encode_requests(items, settings, self.loaded.tokenizer, seed, step)
        decoding = Decoding(
            max_new_tokens=settings.max_new_tokens, temperature=settings.temperature, top_p=settings.top_p
        )
        model = self.loaded.model
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                generated = generate_chat(
                    self.loaded,
                    prompts,
                    decoding,
                    system=settings.system,
                    batch_size=settings.batch_size,
                    seeds=seeds,
                )
        finally:
            model.train(was_training)
        rollouts = []
        for index, out in enumerate(generated):
            group, sample = divmod(index, settings.samples)
            stop = () if out.stop_token is None else (out.stop_token,)
            rollouts.append(
                Rollout(
                    group=group,
                    sample=sample,
                    item=items[group],
                    text=out.text,
                    prompt_ids=encoded[out.prompt],
                    response_ids=(*out.token_ids, *stop),
                    finish_reason=out.finish_reason,
                )
            )
        return rollouts

    def sync(self, model: Any) -> SyncReport:
        """Adopt ``model``. In one process the engine samples from the trainer's own module object, so
        parity holds by identity (difference 0); out-of-process engines compare the probe's log-probs."""
        start = time.perf_counter()
        self.loaded = LoadedModel(
            model=model,
            tokenizer=self.loaded.tokenizer,
            name=self.loaded.name,
            source=self.loaded.source,
            kind=self.loaded.kind,
        )
        return SyncReport(0.0, PROBE_TOLERANCE, time.perf_counter() - start)

    def close(self) -> None:
        return None
