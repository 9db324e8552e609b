"""Watermarked generation with transformers: a logits processor that carries one payload per batch row.

transformers' own watermark processors take one key and no payload per call; ours reads, for each row, the
tokens generated so far (prompt excluded, whatever the left padding) and that row's payload, so one batch can
serve many users with different identity messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from safework.core.console import progress
from safework.core.types import WatermarkPayload
from safework.watermark.engine import Watermarker
from safework.watermark.errors import WatermarkInputError


class WatermarkLogitsProcessor(LogitsProcessor):
    """Adds the watermark bias of each row's payload (None: row untouched) at every decoding step.

    Sampling and greedy decoding are supported; beam search is not (beams reorder rows between steps, and
    a beam's payload would follow the wrong row). The prompt length is taken at the first step, so use one
    processor per ``generate`` call (it resets itself when it sees a shorter input than last time).
    """

    def __init__(self, watermarker: Watermarker, payloads: Sequence[WatermarkPayload | None]):
        self.watermarker = watermarker
        self.payloads = list(payloads)
        self.prompt_length: int | None = None
        self._last_length = -1

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if input_ids.shape[0] != len(self.payloads):
            raise WatermarkInputError(
                f"the batch has {input_ids.shape[0]} rows but {len(self.payloads)} payloads were given; "
                "pass one "
                "payload (or None) per row, and do not combine the processor with beam search"
            )
        length = int(input_ids.shape[1])
        if self.prompt_length is None or length <= self._last_length:
            self.prompt_length = length
        self._last_length = length
        generated = input_ids[:, self.prompt_length :].tolist()
        self.watermarker.bias_(scores, generated, self.payloads)
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
    watermark: bool = True,
    show_progress: bool = True,
) -> list[Generation]:
    """Sample a continuation for every prompt, each watermarked with its payload (``watermark=False``:
    no processor at all, the baseline for timing and quality)."""
    if len(prompts) != len(payloads):
        raise WatermarkInputError(f"{len(prompts)} prompts but {len(payloads)} payloads; pass one per prompt")
    if any(not isinstance(p, str) or not p.strip() for p in prompts):
        raise WatermarkInputError("every prompt must be a non-empty string")
    if max_new_tokens < 1 or not 0 <= min_new_tokens <= max_new_tokens:
        raise WatermarkInputError(
            f"need 1 <= max_new_tokens and 0 <= min_new_tokens <= max_new_tokens, got {max_new_tokens}, "
            f"{min_new_tokens}"
        )
    loaded = watermarker.loaded
    tokenizer = loaded.tokenizer
    tokenizer.padding_side = "left"
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    results: list[Generation] = []
    with progress() as bar:
        task = bar.add_task("generating", total=len(prompts), visible=show_progress)
        for start in range(0, len(prompts), batch_size):
            chunk = list(prompts[start : start + batch_size])
            chunk_payloads = list(payloads[start : start + batch_size])
            encoded = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
            processors = LogitsProcessorList()
            if watermark:
                processors.append(WatermarkLogitsProcessor(watermarker, chunk_payloads))
            torch.manual_seed(seed + start)
            with torch.inference_mode():
                output = cast(Any, loaded.model).generate(
                    input_ids=encoded["input_ids"].to(loaded.device),
                    attention_mask=encoded["attention_mask"].to(loaded.device),
                    do_sample=True,
                    temperature=temperature,
                    top_p=top_p,
                    top_k=top_k,
                    max_new_tokens=max_new_tokens,
                    min_new_tokens=min_new_tokens,
                    logits_processor=processors,
                    pad_token_id=pad_id,
                )
            new = output[:, encoded["input_ids"].shape[1] :].tolist()
            for prompt, ids, payload in zip(chunk, new, chunk_payloads, strict=True):
                ids = _strip_after_eos(ids, tokenizer.eos_token_id)
                text = str(tokenizer.decode(ids, skip_special_tokens=True))
                results.append(Generation(prompt, text, ids, payload if watermark else None))
            bar.advance(task, len(chunk))
    return results


def _strip_after_eos(ids: list[int], eos: int | None) -> list[int]:
    if eos is not None and eos in ids:
        return ids[: ids.index(eos)]
    return ids
