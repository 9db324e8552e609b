"""The shared shape of the neural verifiers: frozen MiniLM embeddings → a trained head → logits.

The head is loaded from the cache, or trained on first use (see :mod:`training`). Scoring embeds each
item's prompt and final answer (text after the last ``</think>``) with the same truncation used in
training; nothing depends on the rest of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from safework.verifiers.base import ClassifierVerifier, VerifierItem
from safework.verifiers.neural.embedding import PROMPT_TOKENS, RESPONSE_TOKENS, embed
from safework.verifiers.neural.head import final_answer, pair_features
from safework.verifiers.neural.training import TrainConfig, TrainedHead, load_or_train


class NeuralClassifierVerifier(ClassifierVerifier):
    """Base of :class:`SafetyVerifier` and :class:`ValueVerifier`; subclasses set ``scheme``."""

    def __init__(self, seed: int = 0, retrain: bool = False) -> None:
        self.trained: TrainedHead = load_or_train(
            self.scheme.principle, TrainConfig(seed=seed), force=retrain
        )
        if self.trained.labels != self.scheme.labels:
            raise RuntimeError(
                f"the cached {self.scheme.principle} head predicts {self.trained.labels}, expected "
                f"{self.scheme.labels}; retrain with "
                f"`safework verifiers train {self.scheme.principle} --force`"
            )

    @property
    def metadata(self) -> dict[str, Any]:
        """Training metadata: data hash, seed, held-out figures, timings."""
        return self.trained.metadata

    def logits(self, items: Sequence[VerifierItem]) -> Any:
        import torch

        answers = [final_answer(item.response) for item in items]
        prompts = embed([item.prompt for item in items], PROMPT_TOKENS)
        features = pair_features(prompts, embed(answers, RESPONSE_TOKENS), answers)
        with torch.inference_mode():
            return self.trained.head(features).float()
