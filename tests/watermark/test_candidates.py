"""Extraction under many candidate keys: equal to extracting key by key, for every scheme, while credid's
proxy pass runs once per text."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
import torch

from safework.core.types import WatermarkPayload
from safework.watermark.candidates import best_candidate
from safework.watermark.engine import load_watermarker
from safework.watermark.errors import WatermarkInputError
from safework.watermark.generation import generate
from safework.watermark.keys import WatermarkKey

SCHEMES = [("credid", 16), ("kgw", 0), ("mpac", 16), ("ctwl-hash", 12)]


def _keys(n: int, seed: int = 3) -> list[WatermarkKey]:
    rng = random.Random(seed)
    return [WatermarkKey(rng.randbytes(16)) for _ in range(n)]


@pytest.mark.parametrize(("scheme", "bits"), SCHEMES)
def test_candidates_equal_extracting_key_by_key(scheme: str, bits: int, tiny: Any) -> None:
    keys = _keys(5)
    ids = torch.randint(100, 4000, (80,), generator=torch.Generator().manual_seed(7))
    # The extracting watermarker's own key plays no part.
    wm = load_watermarker(scheme, WatermarkKey(bytes(16)), bits, model=tiny)
    results = wm.extract_candidates(ids, keys)
    assert [r.index for r in results] == list(range(5))
    for key, result in zip(keys, results, strict=True):
        alone = wm.with_key(key).extract_ids(ids)
        assert result.fingerprint == key.fingerprint()
        assert result.payload == alone.decoded and result.extraction.symbols == alone.symbols
        assert math.isclose(result.raw_p_value, alone.p_value, rel_tol=1e-12, abs_tol=1e-300)
        assert result.z == alone.z and result.extraction.bit_confidence == alone.bit_confidence
        assert result.scored_tokens == alone.scored_tokens and result.calibrated_p_value is None
        assert result.hits == sum(s.hits for s in alone.slots)


def test_the_embedding_key_is_the_best_candidate(tiny: Any) -> None:
    keys = _keys(5)
    marked = load_watermarker("credid", keys[2], 16, model=tiny, delta=6.0)
    payload = WatermarkPayload(0xBEEF, 16)
    ids = generate(marked, ["Once upon a time"], [payload], max_new_tokens=80, min_new_tokens=80)[0].ids
    results = marked.extract_candidates(ids, keys)
    best, corrected = best_candidate(results)
    assert best.index == 2 and best.payload == payload and best.extraction.detected
    assert corrected == min(1.0, best.p_value * 5) < 1e-6
    assert all(not r.extraction.detected for r in results if r.index != 2)


@pytest.mark.parametrize(("scheme", "bits"), [("credid", 16), ("mpac", 16)])
def test_known_payload_p_values_equal_the_key_by_key_test_and_decide_the_candidate(
    scheme: str, bits: int, tiny: Any
) -> None:
    keys = _keys(4)
    payloads = [WatermarkPayload(0x1234 + i, 16) for i in range(4)]
    marked = load_watermarker(scheme, keys[1], bits, model=tiny, delta=3.0)
    ids = generate(marked, ["Once upon a time"], [payloads[1]], max_new_tokens=60, min_new_tokens=60)[0].ids
    results = marked.extract_candidates(ids, keys, payloads=payloads)
    for key, payload, result in zip(keys, payloads, results, strict=True):
        alone = marked.with_key(key).known_payload_p_value(ids, payload)
        assert result.known_payload_p_value == pytest.approx(alone, rel=1e-12, abs=1e-300)
        assert result.p_value == result.known_payload_p_value  # no calibration: the exact test decides
    best, _ = best_candidate(results)
    assert best.index == 1 and best.known_payload_p_value is not None
    assert best.known_payload_p_value <= best.raw_p_value  # no search over payloads to correct for
    with pytest.raises(WatermarkInputError, match="one per key"):
        marked.extract_candidates(ids, keys, payloads=payloads[:2])


def test_credid_runs_its_proxy_once_per_text(tiny: Any) -> None:
    wm = load_watermarker("credid", WatermarkKey(bytes(16)), 16, model=tiny)
    ids = torch.randint(100, 4000, (60,))
    calls = []
    along = wm.scheme.proxy.along

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return along(*args, **kwargs)

    wm.scheme.proxy.along = counting  # type: ignore[method-assign]
    wm.extract_candidates(ids, _keys(6))
    assert len(calls) == 1
    for key in _keys(2):
        wm.with_key(key).extract_ids(ids)
    assert len(calls) == 3


def test_shared_work_of_another_text_is_refused(tiny: Any) -> None:
    wm = load_watermarker("credid", WatermarkKey(bytes(16)), 16, model=tiny)
    a, b = torch.randint(100, 4000, (40,)), torch.randint(100, 4000, (40,))
    with pytest.raises(WatermarkInputError, match="another text"):
        wm.scheme.keyed_evidence(b, wm.scheme.shared_work(a))
    other = load_watermarker("credid", WatermarkKey(bytes(16)), 16, model=tiny, top_k=64)
    with pytest.raises(WatermarkInputError, match="shared_work"):
        wm.scheme.keyed_evidence(a, other.scheme.shared_work(a))


def test_bad_candidate_input_is_refused(tiny: Any) -> None:
    wm = load_watermarker("credid", WatermarkKey(bytes(16)), 16, model=tiny)
    with pytest.raises(WatermarkInputError, match="at least one"):
        wm.extract_candidates(list(range(100, 160)), [])
    with pytest.raises(WatermarkInputError, match="WatermarkKey"):
        wm.extract_candidates(list(range(100, 160)), ["00" * 16])  # type: ignore[list-item]
    with pytest.raises(WatermarkInputError, match="warm-up"):
        wm.extract_candidates(list(range(100, 105)), _keys(1))
    with pytest.raises(WatermarkInputError, match="no calibration"):
        wm.extract_candidates(list(range(100, 160)), _keys(1), calibrations={})


def test_tops_checked_once_give_the_same_table_and_bad_tops_are_still_refused() -> None:
    from safework.core.ops.prf import OpInputError, key_from_bytes
    from safework.watermark.kernels import check_tops, green_table

    key = key_from_bytes(bytes(range(16)))
    gen = torch.Generator().manual_seed(0)
    rows, k = 12, 8
    ids = torch.stack([torch.randperm(500, generator=gen)[:k] for _ in range(rows)])
    probs = torch.softmax(torch.randn(rows, k, generator=gen), dim=1).mul(0.9).float()
    rest = (1.0 - probs.double().sum(dim=1)).clamp(min=0)
    context = torch.randint(0, 500, (rows, 1), generator=gen)
    tokens = torch.randint(0, 500, (rows,), generator=gen)
    check_tops(ids, probs, rest)
    full = green_table(key, context, tokens, ids, probs, rest, 7, 0.5)
    assert torch.equal(full, green_table(key, context, tokens, ids, probs, rest, 7, 0.5, tops_checked=True))
    bad = ids.clone()
    bad[0, 1] = bad[0, 0]
    with pytest.raises(OpInputError, match="distinct"):
        check_tops(bad, probs, rest)
    with pytest.raises(OpInputError, match="finite"):
        check_tops(ids, probs, rest * float("nan"))
