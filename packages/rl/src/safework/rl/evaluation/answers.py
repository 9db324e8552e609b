"""Answers of the model under test for a suite's items, generated in batches and cached as they finish.

Generation goes through the one batched loop of :mod:`safework.core.models.generation`; this module only
decides what is still missing (the cache), in which order (similar prompt lengths together, so batches
carry little padding), and records each batch before starting the next, so an interrupted run loses at
most one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from safework.rl.evaluation.cache import GenerationCache, generation_key

if TYPE_CHECKING:
    from safework.core.models.loader import LoadedModel
    from safework.rl.evaluation.decodings import DecodingSpec
    from safework.rl.evaluation.suites import EvalItem


def keys_for(
    fingerprint: str, items: Sequence[EvalItem], spec: DecodingSpec, max_new_tokens: int
) -> list[str]:
    decoding = spec.to_json(max_new_tokens)
    return [generation_key(fingerprint, item.suite, decoding, item.prompt) for item in items]


def missing_count(
    cache: GenerationCache,
    fingerprint: str,
    items: Sequence[EvalItem],
    spec: DecodingSpec,
    max_new_tokens: int,
) -> int:
    return len({k for k in keys_for(fingerprint, items, spec, max_new_tokens) if cache.get(k) is None})


def answer_items(
    loaded: LoadedModel,
    items: Sequence[EvalItem],
    spec: DecodingSpec,
    *,
    fingerprint: str,
    cache: GenerationCache,
    max_new_tokens: int,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """One cache record (``text``, ``new_tokens``, ``finish_reason``, ...) per item, in item order."""
    from safework.core.models.generation import generate_chat

    keys = keys_for(fingerprint, items, spec, max_new_tokens)
    todo: dict[str, EvalItem] = {}
    for key, item in zip(keys, items, strict=True):
        if cache.get(key) is None:
            todo.setdefault(key, item)
    pending = sorted(todo.items(), key=lambda pair: len(pair[1].prompt))
    decoding = spec.decoding(max_new_tokens)
    for start in range(0, len(pending), batch_size):
        chunk = pending[start : start + batch_size]
        prompts = [item.prompt for _, item in chunk]
        generated = generate_chat(
            loaded,
            prompts,
            decoding,
            system=spec.system,
            batch_size=batch_size,
            seeds=[spec.prompt_seed(p) for p in prompts],
        )
        cache.add(
            [
                {
                    "key": key,
                    "suite": item.suite,
                    "decoding": spec.name,
                    "prompt": item.prompt,
                    "text": g.text,
                    "new_tokens": g.new_tokens,
                    "finish_reason": g.finish_reason,
                }
                for (key, item), g in zip(chunk, generated, strict=True)
            ]
        )
        if on_batch is not None:
            on_batch(len(chunk))
    out = []
    for key in keys:
        record = cache.get(key)
        assert record is not None
        out.append(record)
    return out
