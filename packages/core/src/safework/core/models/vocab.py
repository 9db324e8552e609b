"""Tokenizer/model agreement: every id the tokenizer can produce must have a logit.

A mismatch does not fail loudly on its own: embedding lookups of out-of-range ids crash deep inside torch,
and a watermark or verifier indexing logits by token id silently reads the wrong column. Checking once at
load time turns both into one clear error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from safework.core.errors import VocabularyMismatchError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def logits_width(model: PreTrainedModel) -> int:
    """How many token ids the model scores: rows of its output embedding, else ``config.vocab_size``."""
    output = model.get_output_embeddings()
    weight = getattr(output, "weight", None)
    if weight is not None and weight.dim() == 2:
        return int(weight.shape[0])
    return int(model.config.vocab_size)


def tokenizer_max_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The largest id the tokenizer can emit, counting added and special tokens."""
    ids = set(tokenizer.get_vocab().values())
    ids.update(i for i in tokenizer.all_special_ids if i is not None)
    return max(ids) if ids else -1


def check_vocabulary(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Raise VocabularyMismatchError when the tokenizer can emit an id the model has no logit for.

    A tokenizer *smaller* than the logits width is fine (models often pad their vocabulary).
    """
    width = logits_width(model)
    max_id = tokenizer_max_id(tokenizer)
    if max_id < width:
        return
    tokenizer_name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    model_name = getattr(model.config, "name_or_path", "") or type(model).__name__
    raise VocabularyMismatchError(
        f"tokenizer {tokenizer_name!r} can emit token ids up to {max_id} ({len(tokenizer)} tokens), "
        f"but model {model_name!r} has logits for only {width} ids (0..{width - 1}; config.vocab_size="
        f"{model.config.vocab_size}). Ids >= {width} would index past the output layer. Fix: load the model "
        "with the tokenizer it was trained with, or grow the model with "
        "model.resize_token_embeddings(len(tokenizer)) before training it."
    )
