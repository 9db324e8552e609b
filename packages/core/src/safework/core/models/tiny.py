"""Tiny random-init causal LMs for fast unit tests (and GPU checks, where no real weights can travel).

They share the Llama architecture and the token ids of the embedded SmolLM2 model (vocabulary 49,152;
bos 1, eos/pad 2), so they pair with its real tokenizer while running in milliseconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from safework.core.errors import ConfigError

if TYPE_CHECKING:
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

    from safework.core.models.loader import LoadedModel

SMOLLM2_VOCAB_SIZE = 49_152


def tiny_config(
    vocab_size: int = SMOLLM2_VOCAB_SIZE,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    max_positions: int = 512,
    tie_word_embeddings: bool = True,
) -> LlamaConfig:
    """A small Llama config; sizes are validated here so a bad test parameter fails with a clear message."""
    from transformers import LlamaConfig

    if min(vocab_size, hidden, layers, heads, kv_heads, max_positions) < 1:
        raise ConfigError("tiny_config sizes must all be >= 1")
    if hidden % heads or heads % kv_heads:
        raise ConfigError(
            f"tiny_config needs hidden ({hidden}) divisible by heads ({heads}) and heads divisible by "
            f"kv_heads ({kv_heads}); pick e.g. hidden=64, heads=4, kv_heads=2"
        )
    special = [i for i in (0, 1, 2) if i < vocab_size]
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=tie_word_embeddings,
        bos_token_id=special[1] if len(special) > 1 else None,
        eos_token_id=special[-1],
        pad_token_id=special[-1],
    )


def tiny_causal_lm(
    vocab_size: int = SMOLLM2_VOCAB_SIZE,
    hidden: int = 64,
    layers: int = 2,
    seed: int = 0,
    *,
    heads: int = 4,
    kv_heads: int = 2,
    tie_word_embeddings: bool = True,
) -> LlamaForCausalLM:
    """A random-init ``LlamaForCausalLM`` in eval mode; the same arguments give the same weights.

    The global torch RNG is left as it was, so building a model never perturbs a test's own randomness.
    """
    import torch
    from transformers import LlamaForCausalLM

    cfg = tiny_config(
        vocab_size=vocab_size,
        hidden=hidden,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        tie_word_embeddings=tie_word_embeddings,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
    return model.eval()


def tiny_loaded(
    tokenizer: PreTrainedTokenizerBase,
    *,
    vocab_size: int | None = None,
    hidden: int = 64,
    layers: int = 2,
    seed: int = 0,
    check_vocab: bool = True,
) -> LoadedModel:
    """A tiny model paired with a real tokenizer (by default sized to it), ready for :func:`chat`."""
    from safework.core.models.loader import LoadedModel
    from safework.core.models.vocab import check_vocabulary, tokenizer_max_id

    size = vocab_size if vocab_size is not None else tokenizer_max_id(tokenizer) + 1
    model = tiny_causal_lm(vocab_size=size, hidden=hidden, layers=layers, seed=seed)
    if check_vocab:
        check_vocabulary(model, tokenizer)
    name = f"tiny-llama-h{hidden}-l{layers}-v{size}-seed{seed}"
    return LoadedModel(model=model, tokenizer=tokenizer, name=name, source=None, kind="tiny")
