"""Causal LMs for safework: the embedded default (SmolLM2-135M-Instruct), local folders, GGUF files.

Names are exported lazily: importing this package (which the CLI does for ``safework model``) must not
import torch or transformers, so ``safework --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from safework.core.models.conversation import ChatResult, chat, chat_result
    from safework.core.models.embedded import EMBEDDED_NAME, EMBEDDED_SPEC, INSTALL_HINT, embedded_gguf_path
    from safework.core.models.encoder import SentenceEncoder, load_sentence_encoder
    from safework.core.models.generation import Decoding, Generated, generate_chat
    from safework.core.models.loader import (
        LoadedModel,
        ModelSpec,
        convert_model,
        load_causal_lm,
        load_tokenizer,
        resolve_spec,
    )
    from safework.core.models.tiny import tiny_causal_lm, tiny_config, tiny_loaded
    from safework.core.models.vocab import check_vocabulary, logits_width, tokenizer_max_id

_EXPORTS = {
    "ChatResult": "conversation",
    "chat": "conversation",
    "chat_result": "conversation",
    "Decoding": "generation",
    "Generated": "generation",
    "generate_chat": "generation",
    "SentenceEncoder": "encoder",
    "load_sentence_encoder": "encoder",
    "EMBEDDED_NAME": "embedded",
    "EMBEDDED_SPEC": "embedded",
    "INSTALL_HINT": "embedded",
    "embedded_gguf_path": "embedded",
    "LoadedModel": "loader",
    "ModelSpec": "loader",
    "convert_model": "loader",
    "load_causal_lm": "loader",
    "load_tokenizer": "loader",
    "resolve_spec": "loader",
    "tiny_causal_lm": "tiny",
    "tiny_config": "tiny",
    "tiny_loaded": "tiny",
    "check_vocabulary": "vocab",
    "logits_width": "vocab",
    "tokenizer_max_id": "vocab",
}

__all__ = [
    "EMBEDDED_NAME",
    "EMBEDDED_SPEC",
    "INSTALL_HINT",
    "ChatResult",
    "Decoding",
    "Generated",
    "LoadedModel",
    "ModelSpec",
    "SentenceEncoder",
    "chat",
    "chat_result",
    "check_vocabulary",
    "convert_model",
    "embedded_gguf_path",
    "generate_chat",
    "load_causal_lm",
    "load_sentence_encoder",
    "load_tokenizer",
    "logits_width",
    "resolve_spec",
    "tiny_causal_lm",
    "tiny_config",
    "tiny_loaded",
    "tokenizer_max_id",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this hook
    return value
