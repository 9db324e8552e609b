"""Every built-in scheme, end to end on a tiny random model: per-row payloads in one batch come back out,
unwatermarked rows and wrong keys are not detected, and bad input is refused with a clear message."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from safework.core.types import WatermarkPayload
from safework.watermark.engine import Watermarker, load_watermarker
from safework.watermark.errors import UnknownSchemeError, WatermarkInputError
from safework.watermark.generation import WatermarkLogitsProcessor, generate
from safework.watermark.keys import WatermarkKey

SCHEMES = [("credid", 16), ("kgw", 0), ("mpac", 16), ("ctwl-hash", 12)]
PROMPTS = ["Once upon a time", "The committee met on Tuesday to", "In the laboratory the samples were"]


def _payloads(bits: int) -> list[WatermarkPayload | None]:
    if bits == 0:
        return [WatermarkPayload(0, 0), WatermarkPayload(0, 0), None]
    return [
        WatermarkPayload(0xBEEF & ((1 << bits) - 1), bits),
        WatermarkPayload(0x1234 & ((1 << bits) - 1), bits),
        None,
    ]


@pytest.mark.parametrize(("scheme", "bits"), SCHEMES)
def test_per_row_payloads_round_trip(scheme: str, bits: int, key: WatermarkKey, tiny: Any) -> None:
    wm = load_watermarker(scheme, key, bits, model=tiny, delta=6.0)
    payloads = _payloads(bits)
    out = generate(wm, PROMPTS, payloads, max_new_tokens=80, min_new_tokens=80, show_progress=False)
    for generation, payload in zip(out, payloads, strict=True):
        assert len(generation.ids) == 80
        result = wm.extract_ids(generation.ids)
        if payload is None:
            assert not result.detected and result.payload is None and result.p_value > 1e-3
        else:
            assert result.detected and result.payload == payload, (scheme, result.to_json())
            assert result.p_value < 1e-6
    wrong = load_watermarker(scheme, WatermarkKey(bytes(16)), bits, model=tiny, delta=6.0)
    assert not wrong.extract_ids(out[0].ids).detected


@pytest.mark.parametrize(("scheme", "bits"), SCHEMES)
def test_bias_touches_only_marked_rows_past_the_warmup(
    scheme: str, bits: int, key: WatermarkKey, tiny: Any
) -> None:
    wm = load_watermarker(scheme, key, bits, model=tiny, delta=2.0)
    warm = wm.scheme.warmup
    logits = torch.randn(3, tiny.model.config.vocab_size)
    before = logits.clone()
    generated = [list(range(100, 100 + warm)), list(range(100, 100 + warm)), list(range(100, 99 + warm))]
    payload = _payloads(bits)[0]
    wm.bias_(logits, generated, [payload, None, payload])
    changed = (logits != before).any(dim=1).tolist()
    assert changed == [True, False, False]
    delta = logits[0] - before[0]
    assert torch.allclose(delta[delta != 0], torch.tensor(2.0))


def test_processor_rejects_a_batch_payload_mismatch(key: WatermarkKey, tiny: Any) -> None:
    wm = load_watermarker("kgw", key, 0, model=tiny)
    processor = WatermarkLogitsProcessor(wm, [WatermarkPayload(0, 0)])
    with pytest.raises(WatermarkInputError, match="pass one"):
        processor(torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, tiny.model.config.vocab_size))


def test_scheme_errors_name_the_fix(key: WatermarkKey, tiny: Any) -> None:
    with pytest.raises(UnknownSchemeError, match="registered schemes: credid, ctwl-hash, kgw, mpac"):
        load_watermarker("nope", key, 16, model=tiny)
    with pytest.raises(WatermarkInputError, match="--bits >= 1"):
        load_watermarker("credid", key, 0, model=tiny)
    with pytest.raises(WatermarkInputError, match="no option"):
        load_watermarker("mpac", key, 16, model=tiny, permutations=3)
    with pytest.raises(WatermarkInputError, match="delta must be"):
        load_watermarker("kgw", key, 0, model=tiny, delta=-1.0)
    wm: Watermarker = load_watermarker("credid", key, 16, model=tiny)
    with pytest.raises(WatermarkInputError, match="warm-up"):
        wm.extract_ids([5] * wm.scheme.warmup)
    with pytest.raises(WatermarkInputError, match="empty text"):
        wm.extract_text("   ")
    with pytest.raises(WatermarkInputError, match="token ids must lie"):
        wm.extract_ids([10**6] * 40)


def test_extraction_is_deterministic_and_key_dependent(key: WatermarkKey, tiny: Any) -> None:
    ids = torch.randint(0, 49152, (120,), generator=torch.Generator().manual_seed(3))
    a = load_watermarker("credid", key, 16, model=tiny).extract_ids(ids)
    b = load_watermarker("credid", key, 16, model=tiny).extract_ids(ids)
    assert a.to_json() == b.to_json()
    assert not a.detected
    other = WatermarkKey(bytes(range(1, 17)))
    rekeyed = load_watermarker("credid", key, 16, model=tiny).with_key(other)
    fresh = load_watermarker("credid", other, 16, model=tiny)
    assert rekeyed.extract_ids(ids).to_json() == fresh.extract_ids(ids).to_json() != a.to_json()


def test_credid_symbols_default_to_bytes_but_never_exceed_the_payload(key: WatermarkKey, tiny: Any) -> None:
    assert load_watermarker("credid", key, 32, model=tiny).layout.slots == 4
    assert load_watermarker("credid", key, 4, model=tiny).layout.symbol_bits == 4
    assert load_watermarker("credid", key, 4, model=tiny, crc=True).layout.symbol_bits == 8
    assert load_watermarker("credid", key, 16, model=tiny, symbol_bits=4).layout.slots == 4
