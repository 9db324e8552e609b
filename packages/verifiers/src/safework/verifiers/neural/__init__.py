"""Neural verifiers (safety, value, normal) on the frozen embedded MiniLM encoder; the keyword baseline."""

from safework.verifiers.neural.keyword import KeywordSafetyVerifier
from safework.verifiers.neural.normal import NormalVerifier
from safework.verifiers.neural.safety import SafetyVerifier
from safework.verifiers.neural.training import TrainConfig, load_or_train, train
from safework.verifiers.neural.value import ValueVerifier

__all__ = [
    "KeywordSafetyVerifier",
    "NormalVerifier",
    "SafetyVerifier",
    "TrainConfig",
    "ValueVerifier",
    "load_or_train",
    "train",
]
