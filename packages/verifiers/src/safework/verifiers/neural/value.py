"""The neural value verifier: good / bad against the paper's criteria (safety, kindness, ethics, dignity,
truthfulness vs hate, violence, stereotypes, privacy violation, illegal acts).

Trained on human-graded pyrit pairs, real helpful answers, and refusals: a refusal of a harmful request is
good, a refusal of a benign request is bad (corpus.py). The graded score is P(good).
"""

from __future__ import annotations

from typing import ClassVar

from safework.verifiers.labels import VALUE, LabelScheme
from safework.verifiers.neural.verifier import NeuralClassifierVerifier


class ValueVerifier(NeuralClassifierVerifier):
    """MiniLM + MLP value classifier; ``ValueVerifier(seed=0, retrain=False)``."""

    scheme: ClassVar[LabelScheme] = VALUE
