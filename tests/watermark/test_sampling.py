"""Where the watermark bias sits relative to temperature and top-k/top-p (tiny random model).

Three placements: the bias on every green raw logit (before the filters), after temperature and top-p (where
transformers' own watermark processors sit), and the default "nucleus": raw logits, but only green tokens
inside the tempered distribution's 98 % nucleus and not yet used after the same context.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from safework.core.models.generation import Decoding, filter_scores, generate_chat
from safework.core.types import WatermarkPayload
from safework.watermark.engine import load_watermarker
from safework.watermark.errors import WatermarkInputError
from safework.watermark.generation import WatermarkLogitsProcessor, generate
from safework.watermark.keys import WatermarkKey
from safework.watermark.sampling import (
    DEFAULT_PLACEMENT,
    RowSampling,
    bias_in_nucleus_,
    nucleus_mask,
    used_tokens,
)

PROMPTS = ["Once upon a time", "The committee met on Tuesday to", "In the laboratory the samples were"]
PAYLOADS = [WatermarkPayload(0xBEEF, 16), None, WatermarkPayload(0x1234, 16)]


class _Raw:
    """Keeps a copy of the raw scores of every step (runs before the sampler's filters)."""

    def __init__(self) -> None:
        self.scores: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self.scores.append(scores.clone())
        return scores


class _Final(_Raw):
    """Keeps the scores the sampler finally draws from."""


@pytest.fixture(scope="module")
def sharp(tokenizer: Any) -> Any:
    """A tiny model with its weights scaled up: peaked next-token distributions with a real tail, like a
    trained model's (a fresh random init is nearly uniform over the vocabulary)."""
    from safework.core.models import tiny_loaded

    loaded = tiny_loaded(tokenizer, seed=3)
    with torch.no_grad():
        for parameter in loaded.model.parameters():
            if parameter.dim() > 1:
                parameter.mul_(20.0)
    return loaded


def _supports(tiny: Any, key: WatermarkKey, placement: str) -> list[tuple[Any, Any, Any]]:
    """Per step and row: (tokens the unwatermarked sampler keeps, tokens the watermarked one can draw,
    the 98 % nucleus of the tempered distribution), under a strong bias."""
    wm = load_watermarker("kgw", key, 0, model=tiny, delta=8.0)
    decoding = Decoding(max_new_tokens=12, temperature=0.7, top_p=0.9, seed=0)
    raw, final = _Raw(), _Final()
    sampling = RowSampling(0.7) if placement == "nucleus" else None
    marker = WatermarkLogitsProcessor(wm, [WatermarkPayload(0, 0)] * len(PROMPTS), sampling=sampling)
    early, late = ([raw], [marker, final]) if placement == "after-filters" else ([raw, marker], [final])
    generate_chat(tiny, PROMPTS, decoding, template=False, logits_processors=early, filtered_processors=late)
    return [
        (
            torch.isfinite(filter_scores(r, decoding)),
            torch.isfinite(f),
            torch.stack([nucleus_mask(row, RowSampling(0.7)) for row in r]),
        )
        for r, f in zip(raw.scores, final.scores, strict=True)
    ]


def test_placements_and_what_they_let_the_sampler_draw(sharp: Any, key: WatermarkKey) -> None:
    assert DEFAULT_PLACEMENT == "nucleus"
    # after the filters: exactly the unwatermarked nucleus
    assert all(torch.equal(k, d) for k, d, _ in _supports(sharp, key, "after-filters"))
    # before the filters, a strong bias pulls green tokens from far in the tail in
    before = _supports(sharp, key, "before-filters")
    assert any(bool((d & ~wide).any()) for _, d, wide in before)
    # "nucleus": it may widen the sampler's nucleus, but only with tokens of the tempered 98 % nucleus
    nucleus = _supports(sharp, key, "nucleus")
    assert all(not bool((d & ~wide).any()) for _, d, wide in nucleus)
    assert any(bool((d & ~k).any()) for k, d, _ in nucleus)


def test_generate_puts_each_placement_where_it_belongs(
    tiny: Any, key: WatermarkKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    wm = load_watermarker("credid", key, 16, model=tiny, delta=4.0)
    seen: list[torch.Tensor] = []
    real = wm.bias_

    def spy(logits: torch.Tensor, generated: Any, payloads: Any) -> None:
        seen.append(logits.clone())
        real(logits, generated, payloads)

    monkeypatch.setattr(wm, "bias_", spy)
    common: dict[str, Any] = {"max_new_tokens": 6, "temperature": 0.7, "top_p": 0.9, "show_progress": False}
    for placement, cut in (("after-filters", True), ("before-filters", False), ("nucleus", False)):
        seen.clear()
        generate(wm, PROMPTS, PAYLOADS, placement=placement, **common)  # type: ignore[arg-type]
        assert seen and all(bool(torch.isinf(s).any()) == cut for s in seen), placement
    with pytest.raises(WatermarkInputError, match="placement must be one of"):
        generate(wm, PROMPTS, PAYLOADS, placement="middle", show_progress=False)  # type: ignore[arg-type]
    with pytest.raises(WatermarkInputError, match="top_p"):
        generate(wm, PROMPTS, PAYLOADS, top_p=0.0, show_progress=False)


def test_payloads_come_back_at_chat_settings_without_telling_the_extractor(
    tiny: Any, key: WatermarkKey
) -> None:
    wm = load_watermarker("credid", key, 16, model=tiny, delta=6.0)
    out = generate(
        wm,
        PROMPTS,
        PAYLOADS,
        max_new_tokens=80,
        min_new_tokens=80,
        temperature=0.7,
        top_p=0.9,
        show_progress=False,
    )
    for generation, payload in zip(out, PAYLOADS, strict=True):
        assert len(generation.ids) == 80
        result = wm.extract_ids(generation.ids)
        assert result.payload == payload and result.detected == (payload is not None)


def test_nucleus_placement_biases_only_plausible_unused_tokens(tiny: Any, key: WatermarkKey) -> None:
    wm = load_watermarker("credid", key, 16, model=tiny, delta=3.0)
    torch.manual_seed(0)
    logits = torch.randn(4, wm.scheme.vocab_size) * 4
    generated = [list(range(200, 230)), [7, 8, 9] * 10, list(range(300, 330)), list(range(400, 430))]
    payloads = [PAYLOADS[0], PAYLOADS[2], None, PAYLOADS[0]]
    settings = [RowSampling(0.7), RowSampling(1.0), RowSampling(0.7), None]
    out = logits.clone()
    bias_in_nucleus_(wm, out, generated, payloads, settings)
    full = logits.clone()
    wm.bias_(full, generated, payloads)
    for row in (0, 1):
        changed = out[row] != logits[row]
        inside = nucleus_mask(logits[row], settings[row])  # type: ignore[arg-type]
        assert bool(changed.any()) and not bool((changed & ~inside).any())
        # inside the nucleus the bias is the plain one, except on tokens that already followed the context
        kept = inside.clone()
        kept[used_tokens(generated[row], 1)] = False
        assert torch.equal(out[row][kept], full[row][kept])
    assert set(used_tokens(generated[1], 1)) == {7} and not bool(out[1, 7] != logits[1, 7])
    assert torch.equal(out[2], logits[2])  # no payload
    assert torch.equal(out[3], full[3])  # settings unknown: no bound, and no token reused yet
    with pytest.raises(WatermarkInputError, match="must agree"):
        bias_in_nucleus_(wm, logits.clone(), generated, payloads, settings[:2])


def test_nucleus_mask_and_used_tokens() -> None:
    logits = torch.tensor([5.0, 4.0, 2.0, -9.0])
    assert nucleus_mask(logits, RowSampling(1.0)).tolist() == [True, True, True, False]
    assert nucleus_mask(logits, RowSampling(0.3)).tolist() == [True, True, False, False]
    assert nucleus_mask(logits, RowSampling(1.0, top_k=1)).tolist() == [True, False, False, False]
    assert used_tokens([1, 2, 1, 3, 5, 1], 1) == [2, 3]
    assert used_tokens([1, 2, 4, 1, 2, 9, 1, 2], 2) == [4, 9]
    assert used_tokens([1], 1) == []
