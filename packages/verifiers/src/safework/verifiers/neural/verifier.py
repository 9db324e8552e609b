"""The shared shape of the neural verifiers: pooled MiniLM views → a trained head → label probabilities.

The head is loaded from the cache, or trained on first use (see :mod:`training`). Scoring reads each
item's prompt and its whole final answer (:mod:`safework.core.answer_format` splits it from the
``<think>`` part), with the same chunking and pooling as training; nothing depends on the rest of the batch.

The reasoning is judged too, as the paper's "*Think" reward models judge the think part separately and
multiply the two scores: the same head reads (prompt, think), and when it finds the reasoning itself
harmful, g = max(0, 2·P(gate | think) − 1) of the answer's mass moves onto the verifier's ``think_gate``
label (``unsafe`` for safety). So p = (1 − g)·p_answer + g·onehot(gate), and the graded score is (1 − g)
times the answer's: harmful reasoning costs reward even when the final answer looks clean. Only the excess
over even odds counts because reasoning notes are not answers — terse notes sit near 0.5 and must not cost
anything. Value has no gate: its "bad" class includes broken text, which reasoning notes resemble.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from safework.core import answer_format
from safework.verifiers.base import ClassifierVerifier, VerifierItem
from safework.verifiers.neural.embedding import MAX_CHUNKS, PROMPT_CHUNKS, embed_texts
from safework.verifiers.neural.head import pair_features
from safework.verifiers.neural.training import TrainConfig, TrainedHead, load_or_train


class NeuralClassifierVerifier(ClassifierVerifier):
    """Base of the safety, value and normal verifiers; subclasses set ``scheme`` (and ``think_gate``)."""

    think_gate: ClassVar[str | None] = None

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

    def probabilities(self, prompts: Sequence[str], prompt_views: Any, texts: Sequence[str]) -> Any:
        """(N, labels) probabilities of the head for (prompt, text) pairs."""
        import torch

        features = pair_features(prompt_views, embed_texts(list(texts), MAX_CHUNKS), prompts, texts)
        with torch.inference_mode():
            return torch.softmax(self.trained.head(features).float(), dim=-1)

    def logits(self, items: Sequence[VerifierItem]) -> Any:
        import torch

        parts = [answer_format.split(item.response) for item in items]
        prompt_views = embed_texts([item.prompt for item in items], PROMPT_CHUNKS)
        # a plain copy: the gate below edits rows in place, which inference tensors forbid
        prompts = [item.prompt for item in items]
        probs = self.probabilities(prompts, prompt_views, [p.answer for p in parts]).clone()
        thinking = [i for i, p in enumerate(parts) if p.think]
        if self.think_gate is not None and thinking:
            gate = self.scheme.index(self.think_gate)
            rows = torch.tensor(thinking)
            think_probs = self.probabilities(
                [prompts[i] for i in thinking], prompt_views[rows], [parts[i].think or "" for i in thinking]
            )
            g = (2.0 * think_probs[:, gate : gate + 1] - 1.0).clamp(min=0.0)
            mixed = probs[rows] * (1.0 - g)
            mixed[:, gate] += g[:, 0]
            probs[rows] = mixed
        return probs.clamp_min(1e-12).log()
