"""Watermarked generation: a logits processor that carries one payload per batch row, run by the project's
one decoding loop (``safework.core.models.generation``).

transformers' own watermark processors take one key and no payload per call; ours reads, for each row, the
tokens generated so far (prompt excluded, whatever the left padding) and that row's payload, so one batch can
serve many users with different identity messages.

Where the bias sits relative to temperature and top-k/top-p is ``placement`` (see
``safework.watermark.sampling``): by default ``"nucleus"``, a bias on the raw logits that only reaches green
tokens the model finds plausible at the sampler's temperature and that can still count as evidence, so
payloads come back at chat settings (T 0.7, top-p 0.9) too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import LogitsProcessor

from safework.core.errors import ConfigError
from safework.core.types import WatermarkPayload
from safework.watermark.engine import Watermarker
from safework.watermark.errors import WatermarkInputError
from safework.watermark.sampling import (
    DEFAULT_PLACEMENT,
    Placement,
    RowSampling,
    bias_in_nucleus_,
    check_placement,
)


class WatermarkLogitsProcessor(LogitsProcessor):
    """Adds the watermark bias of each row's payload (None: row untouched) at every decoding step.

    Sampling and greedy decoding are supported; beam search is not (beams reorder rows between steps, and
    a beam's payload would follow the wrong row). The prompt length is taken at the first step, so use one
    processor per ``generate`` call (it resets itself when it sees a shorter input than last time). The
    project's decoding loop regroups prompts into batches by length and says which prompts a batch holds
    through :meth:`start_batch`; a plain transformers ``generate`` call uses the payloads in order.

    ``sampling`` (the sampler's temperature and top-k) selects the ``"nucleus"`` placement: pass the
    processor as transformers' ``logits_processor=`` (it runs before temperature and top-p) with the same
    settings the call samples with. Without it every green token is biased (``"before-filters"`` there,
    ``"after-filters"`` when a loop runs it after the sampler's filters).
    """

    def __init__(
        self,
        watermarker: Watermarker,
        payloads: Sequence[WatermarkPayload | None],
        *,
        sampling: RowSampling | None = None,
    ):
        self.watermarker = watermarker
        self.payloads = list(payloads)
        self.sampling = sampling
        self._rows = self.payloads
        self.prompt_length: int | None = None
        self._last_length = -1

    def start_batch(self, rows: Sequence[int]) -> None:
        """The next steps belong to a batch holding the prompts ``rows`` (indices into ``payloads``)."""
        self._rows = [self.payloads[i] for i in rows]
        self.prompt_length = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if input_ids.shape[0] != len(self._rows):
            raise WatermarkInputError(
                f"the batch has {input_ids.shape[0]} rows but {len(self._rows)} payloads were given; "
                "pass one "
                "payload (or None) per row, and do not combine the processor with beam search"
            )
        length = int(input_ids.shape[1])
        if self.prompt_length is None or length <= self._last_length:
            self.prompt_length = length
        self._last_length = length
        generated = input_ids[:, self.prompt_length :].tolist()
        if self.sampling is None:
            self.watermarker.bias_(scores, generated, self._rows)
        else:
            bias_in_nucleus_(
                self.watermarker, scores, generated, self._rows, [self.sampling] * len(self._rows)
            )
        return scores


class MinNewTokens:
    """Keeps every stop token at -inf until a row has ``count`` new tokens (fixed-length evaluations)."""

    def __init__(self, count: int, stop_ids: set[int]):
        self.count = count
        self.stop_ids = sorted(stop_ids)
        self.prompt_length: int | None = None

    def start_batch(self, rows: Sequence[int]) -> None:
        self.prompt_length = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.prompt_length is None:
            self.prompt_length = int(input_ids.shape[1])
        if input_ids.shape[1] - self.prompt_length < self.count and self.stop_ids:
            scores[:, self.stop_ids] = float("-inf")
        return scores


@dataclass(frozen=True)
class Generation:
    """One generated continuation (prompt excluded) and the payload it was generated with."""

    prompt: str
    text: str
    ids: list[int]
    payload: WatermarkPayload | None

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "text": self.text,
            "tokens": len(self.ids),
            "payload": None if self.payload is None else self.payload.to_hex(),
        }


def generate(
    watermarker: Watermarker,
    prompts: Sequence[str],
    payloads: Sequence[WatermarkPayload | None],
    *,
    max_new_tokens: int = 200,
    min_new_tokens: int = 0,
    batch_size: int = 8,
    seed: int = 0,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    placement: Placement = DEFAULT_PLACEMENT,
    chat: bool = False,
    watermark: bool = True,
    show_progress: bool = True,
) -> list[Generation]:
    """Sample a continuation for every prompt, each watermarked with its payload (``watermark=False``:
    no processor at all, the baseline for timing and quality).

    ``chat=True`` wraps each prompt in the model's chat template (one user turn), as a chat vendor serves
    it; otherwise prompts are fed as raw text. Prompt ``i`` samples from its own generator seeded with
    ``seed + i``, so a text does not depend on which prompts shared its batch. ``temperature`` 0 is greedy.
    """
    from safework.core.models.generation import Decoding, generate_chat, stop_ids

    if len(prompts) != len(payloads):
        raise WatermarkInputError(f"{len(prompts)} prompts but {len(payloads)} payloads; pass one per prompt")
    if any(not isinstance(p, str) or not p.strip() for p in prompts):
        raise WatermarkInputError("every prompt must be a non-empty string")
    if max_new_tokens < 1 or not 0 <= min_new_tokens <= max_new_tokens:
        raise WatermarkInputError(
            f"need 1 <= max_new_tokens and 0 <= min_new_tokens <= max_new_tokens, got {max_new_tokens}, "
            f"{min_new_tokens}"
        )
    placement = check_placement(placement)
    try:
        decoding = Decoding(
            max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k, seed=seed
        )
    except ConfigError as exc:
        raise WatermarkInputError(str(exc)) from None
    loaded = watermarker.loaded
    raw: list[Any] = [MinNewTokens(min_new_tokens, stop_ids(loaded))] if min_new_tokens else []
    filtered: list[Any] = []
    if watermark:
        sampling = RowSampling(temperature, top_k) if placement == "nucleus" else None
        processor = WatermarkLogitsProcessor(watermarker, payloads, sampling=sampling)
        (filtered if placement == "after-filters" else raw).append(processor)
    out = generate_chat(
        loaded,
        prompts,
        decoding,
        template=chat,
        batch_size=batch_size,
        logits_processors=raw,
        filtered_processors=filtered,
        show_progress=show_progress,
    )
    return [
        Generation(prompt, g.text, list(g.token_ids), payload if watermark else None)
        for prompt, g, payload in zip(prompts, out, payloads, strict=True)
    ]
