"""One-turn chat with a loaded model through its tokenizer's chat template.

Instruct models answer sensibly only when the prompt is wrapped the way they were trained (SmolLM2 uses
ChatML with a default system turn); the template in the tokenizer is the single source of that format.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from safework.core.errors import ConfigError
from safework.core.models.generation import Decoding, generate_chat, render_prompt

if TYPE_CHECKING:
    from safework.core.models.loader import LoadedModel

__all__ = ["ChatResult", "chat", "chat_result", "render_prompt"]


@dataclass(frozen=True)
class ChatResult:
    """The answer text plus what it cost, so callers (and ``--json``) can report speed."""

    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float
    finish_reason: str = "length"

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


def chat_result(
    loaded: LoadedModel,
    prompt: str,
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    system: str | None = None,
) -> ChatResult:
    """Answer one user turn. ``temperature`` 0 is greedy (deterministic); above 0 samples, with ``seed``.

    A one-row call of :func:`safework.core.models.generation.generate_chat`, so chat and batched
    evaluation decode identically.
    """
    if not prompt.strip():
        raise ConfigError("the prompt is empty; pass the question or instruction to answer")
    decoding = Decoding(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed)
    started = time.perf_counter()
    (result,) = generate_chat(loaded, [prompt], decoding, system=system, batch_size=1)
    seconds = time.perf_counter() - started
    return ChatResult(
        text=result.text.strip(),
        prompt_tokens=result.prompt_tokens,
        new_tokens=result.new_tokens,
        seconds=seconds,
        finish_reason=result.finish_reason,
    )


def chat(
    loaded: LoadedModel,
    prompt: str,
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    system: str | None = None,
) -> str:
    """The answer text only; see :func:`chat_result` for token counts and timing."""
    return chat_result(
        loaded,
        prompt,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        system=system,
    ).text
