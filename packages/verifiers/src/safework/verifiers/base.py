"""The verifier interface: a batch of (prompt, response, reference, metadata) in, one normalised score out.

Two shapes of verifier share it:
- :class:`Verifier` — anything that can score a batch (rules, adapters, remote judges);
- :class:`ClassifierVerifier` — a neural verifier that produces class logits over a :class:`LabelScheme`;
  the base turns logits into probabilities, the argmax label and the graded (expected) score, which is
  exactly the computation the fused kernel in ``csrc/verifiers`` performs for many verifiers at once.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from safework.core.types import VerifierScore
from safework.verifiers.labels import LabelScheme


class VerifierInputError(ValueError):
    """An item cannot be scored by this verifier (e.g. the knowledge verifier without a reference)."""


@dataclass(frozen=True)
class VerifierItem:
    """One thing to judge. ``metadata`` carries the task label, query type (harmful/benign), language..."""

    prompt: str
    response: str
    reference: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str) or not isinstance(self.response, str):
            raise VerifierInputError("prompt and response must be strings")
        if self.reference is not None and not isinstance(self.reference, str):
            raise VerifierInputError("reference must be a string or None")


class Verifier(abc.ABC):
    """Scores batches of items for one principle.

    Subclasses set ``principle`` and ``labels`` and implement :meth:`score`. ``requires_reference`` makes
    the boundary check reject items without a gold reference with a clear error instead of a silent 0.
    """

    principle: ClassVar[str]
    labels: ClassVar[tuple[str, ...]]
    requires_reference: ClassVar[bool] = False

    @abc.abstractmethod
    def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
        """One :class:`VerifierScore` per item, in order."""

    def validate(self, items: Sequence[VerifierItem]) -> None:
        """Reject a batch this verifier cannot score, naming the first bad item and the fix."""
        for index, item in enumerate(items):
            if not isinstance(item, VerifierItem):
                raise VerifierInputError(f"item {index} is a {type(item).__name__}, expected VerifierItem")
            if self.requires_reference and not (item.reference or "").strip():
                raise VerifierInputError(
                    f"item {index}: the {self.principle} verifier needs a gold reference; "
                    "pass `reference` with the item"
                )

    def __call__(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
        self.validate(items)
        scores = self.score(items)
        if len(scores) != len(items):
            raise RuntimeError(
                f"{type(self).__name__}.score returned {len(scores)} scores for {len(items)} items"
            )
        return scores


class ClassifierVerifier(Verifier):
    """A verifier whose model emits logits over ``scheme.labels``; the base does the rest."""

    scheme: ClassVar[LabelScheme]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        scheme = cls.__dict__.get("scheme")
        if scheme is not None:  # principle and labels always follow the scheme
            cls.principle = scheme.principle
            cls.labels = scheme.labels

    @abc.abstractmethod
    def logits(self, items: Sequence[VerifierItem]) -> Any:
        """A (len(items), len(scheme.labels)) float tensor of class logits."""

    def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
        import torch

        if not items:
            return []
        logits = torch.as_tensor(self.logits(items), dtype=torch.float32)
        expected = (len(items), len(self.scheme.labels))
        if tuple(logits.shape) != expected:
            raise RuntimeError(
                f"{type(self).__name__}.logits returned shape {tuple(logits.shape)}, expected {expected}"
            )
        probabilities = torch.softmax(logits, dim=-1)
        mapped = torch.tensor(self.scheme.score_vector(), dtype=torch.float32)
        graded = (probabilities * mapped).sum(dim=-1).clamp(0.0, 1.0)
        best = probabilities.argmax(dim=-1)
        results = []
        for row in range(len(items)):
            probs = {
                label: float(p)
                for label, p in zip(self.scheme.labels, probabilities[row].tolist(), strict=True)
            }
            results.append(
                VerifierScore(
                    principle=self.scheme.principle,
                    label=self.scheme.labels[int(best[row])],
                    score=float(graded[row]),
                    raw={"probabilities": probs},
                )
            )
        return results
