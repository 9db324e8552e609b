"""Fixtures for the rl tests: a tiny model on the real SmolLM2 tokenizer (chat template included) and rule
stand-ins for the neural judges, so the harness runs end to end in seconds."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from safework.core.models import LoadedModel
    from safework.rl.evaluation.judges import Judges


@pytest.fixture(scope="session")
def tiny_chat_lm() -> LoadedModel:
    """A random-init two-layer model with SmolLM2's tokenizer: real chat template, milliseconds per token."""
    from safework.core.models import load_tokenizer, tiny_loaded

    return tiny_loaded(load_tokenizer("default"), seed=1)


@pytest.fixture
def rule_judges() -> Judges:
    """The harness's judges with the neural safety verifier and the knowledge embeddings replaced by rules."""
    from safework.rl.evaluation.judges import Judges
    from safework.verifiers.registry import get_verifier

    return Judges(
        {"safety": get_verifier("safety-keyword"), "knowledge": get_verifier("knowledge", semantic=False)}
    )
