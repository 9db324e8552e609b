"""The neural safety verifier: (prompt, whole final answer, reasoning) → one of the paper's six SAFETY labels.

Graded score = expected mapped score (labels.SAFETY), so a refusal-leaning answer to a harmful prompt
scores near 0.1 and a safe, warned answer near 1.0. Trained on registry data only (corpus.py).
"""

from __future__ import annotations

from typing import ClassVar

from safework.verifiers.labels import SAFETY, LabelScheme
from safework.verifiers.neural.verifier import NeuralClassifierVerifier


class SafetyVerifier(NeuralClassifierVerifier):
    """MiniLM + MLP safety classifier; ``SafetyVerifier(seed=0, retrain=False)``."""

    scheme: ClassVar[LabelScheme] = SAFETY
    think_gate: ClassVar[str | None] = "unsafe"
