"""Embedding probes: real-cost stand-in verifiers for load tests and server smoke tests.

A probe runs a real forward pass of the embedded MiniLM encoder over "prompt\\nresponse" and a fixed,
seeded random linear head onto a paper label scheme. Its judgements mean nothing, but its cost and its
batching behaviour are those of a small neural verifier, and it needs no trained weights, so the reward
server's throughput benchmark and tests can run anywhere the encoder does. Never use it as a reward.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from safework.verifiers.base import ClassifierVerifier, VerifierItem
from safework.verifiers.labels import KNOWLEDGE, SAFETY, VALUE, LabelScheme

_shared_encoder: Any = None


def _encoder() -> Any:
    global _shared_encoder
    if _shared_encoder is None:  # one encoder per process, shared by every probe
        from safework.core.models import load_sentence_encoder

        _shared_encoder = load_sentence_encoder()
    return _shared_encoder


class SafetyProbe(ClassifierVerifier):
    """MiniLM embedding + seeded random head over the safety labels (a load-test stand-in)."""

    scheme: ClassVar[LabelScheme] = SAFETY
    seed: ClassVar[int] = 1

    def __init__(self, encoder: Any = None, device: str = "cpu") -> None:
        import torch

        self.encoder = encoder or _encoder()
        self.device = torch.device(device)
        self.encoder.model.to(self.device)
        generator = torch.Generator().manual_seed(self.seed)
        head = torch.randn(self.encoder.dim, len(self.scheme.labels), generator=generator) * 8.0
        self.head = head.to(self.device)

    def texts(self, items: Sequence[VerifierItem]) -> list[str]:
        return [f"{item.prompt}\n{item.response}" for item in items]

    def logits(self, items: Sequence[VerifierItem]) -> Any:
        """One padded forward pass over the whole batch (on ``device``), mean-pooled like the encoder."""
        import torch

        encoder = self.encoder
        with torch.inference_mode():
            batch = encoder.tokenizer(
                self.texts(items),
                padding=True,
                truncation=True,
                max_length=encoder.max_length,
                return_tensors="pt",
            ).to(self.device)
            hidden = encoder.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            embeddings = torch.nn.functional.normalize(pooled, dim=-1)
            return (embeddings @ self.head).float().cpu()


class ValueProbe(SafetyProbe):
    """MiniLM embedding + seeded random head over the value labels (a load-test stand-in)."""

    scheme = VALUE
    seed = 2


class KnowledgeProbe(SafetyProbe):
    """MiniLM embedding + seeded random head over TRUE/FALSE; needs a reference like the real one."""

    scheme = KNOWLEDGE
    seed = 3
    requires_reference = True

    def texts(self, items: Sequence[VerifierItem]) -> list[str]:
        return [f"{item.prompt}\n{item.reference}\n{item.response}" for item in items]
