"""safework verifiers: multi-principled verifiers and the reward server (SafeLadder §4–§5).

Every verifier scores a batch of :class:`VerifierItem` and returns one normalised
:class:`~safework.core.types.VerifierScore` per item; built-ins and third-party verifiers are found through
the ``register_verifiers`` hook (:func:`get_verifier`).
"""

from importlib.metadata import PackageNotFoundError, version

from safework.verifiers.base import ClassifierVerifier, Verifier, VerifierInputError, VerifierItem
from safework.verifiers.labels import KNOWLEDGE, SAFETY, VALUE, LabelScheme
from safework.verifiers.registry import available_verifiers, get_verifier

try:
    __version__ = version("safework-verifiers")
except PackageNotFoundError:
    __version__ = "0+unknown"

__all__ = [
    "KNOWLEDGE",
    "SAFETY",
    "VALUE",
    "ClassifierVerifier",
    "LabelScheme",
    "Verifier",
    "VerifierInputError",
    "VerifierItem",
    "available_verifiers",
    "get_verifier",
]
