"""One-turn chat with a loaded model through its tokenizer's chat template.

Instruct models answer sensibly only when the prompt is wrapped the way they were trained (SmolLM2 uses
ChatML with a default system turn); the template in the tokenizer is the single source of that format.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from safework.core.errors import ConfigError

if TYPE_CHECKING:
    from transformers import GenerationMixin, PreTrainedTokenizerBase

    from safework.core.models.loader import LoadedModel


@dataclass(frozen=True)
class ChatResult:
    """The answer text plus what it cost, so callers (and ``--json``) can report speed."""

    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


def render_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str, system: str | None = None) -> str:
    """The prompt wrapped in the chat template; plain text for base models that have no template."""
    if not getattr(tokenizer, "chat_template", None):
        return prompt
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return str(rendered)


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    import torch

    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


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
    """Answer one user turn. ``temperature`` 0 is greedy (deterministic); above 0 samples, with ``seed``."""
    import torch

    if not prompt.strip():
        raise ConfigError("the prompt is empty; pass the question or instruction to answer")
    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be >= 1 (got {max_new_tokens})")
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0 (got {temperature}); use 0 for greedy decoding")
    if not 0 < top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1] (got {top_p})")
    tokenizer, model = loaded.tokenizer, loaded.model
    text = render_prompt(tokenizer, prompt, system)
    # The template already holds the special tokens; adding them again would duplicate BOS.
    encoded = tokenizer(text, return_tensors="pt", add_special_tokens=not tokenizer.chat_template)
    encoded = encoded.to(loaded.device)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": pad_id}
    if temperature > 0:
        options.update(do_sample=True, temperature=temperature, top_p=top_p)
    else:
        options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    started = time.perf_counter()
    with _seeded(seed), torch.inference_mode():
        output = cast("GenerationMixin", model).generate(**encoded, **options)
    seconds = time.perf_counter() - started
    prompt_len = int(encoded["input_ids"].shape[1])
    new_ids = output[0, prompt_len:]
    answer = str(tokenizer.decode(new_ids, skip_special_tokens=True)).strip()
    new_tokens = int(new_ids.shape[0])
    return ChatResult(text=answer, prompt_tokens=prompt_len, new_tokens=new_tokens, seconds=seconds)


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
