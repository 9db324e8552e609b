"""Per-seed calibration: the rank p-value is exact in the body, the fitted tail stays valid beyond the
corpus, the record round-trips through JSON, and the engine applies it per candidate key."""

from __future__ import annotations

import itertools
import json
import math
import random
from typing import Any

import pytest
import torch

from safework.watermark.calibration import (
    HumanCorpus,
    SeedCalibration,
    calibrate,
    calibration_settings,
    null_p_values,
    score,
)
from safework.watermark.engine import load_watermarker
from safework.watermark.errors import WatermarkInputError
from safework.watermark.keys import WatermarkKey

SETTINGS = {"scheme": "synthetic"}


def _fit(raw: list[float], **kwargs: Any) -> SeedCalibration:
    return SeedCalibration.fit("f" * 16, SETTINGS, raw, **kwargs)


def test_body_is_the_rank_p_value_and_the_curve_is_monotone() -> None:
    rng = random.Random(0)
    raw = [rng.random() for _ in range(500)]
    cal = _fit(raw)
    assert cal.n == 500 and cal.exceedances == 50
    for p in (0.9, 0.5, 0.2, 0.11):
        if score(p) <= cal.threshold:
            expected = (1 + sum(score(x) >= score(p) for x in raw)) / 501
            assert cal.p_value(p) == pytest.approx(expected)
    grid = [10.0**-e for e in range(0, 40)]
    values = [cal.p_value(p) for p in grid]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert values[0] == 1.0 and values[-1] < 1e-20  # the tail goes far below 1 / (n + 1)
    # Beyond the data the curve never falls faster than the raw p-value (rate capped at 1).
    assert cal.p_value(1e-30) >= cal.p_value(1e-20) * 1e-10 * (1 - 1e-9)


@pytest.mark.parametrize(("power", "n_cal"), [(2.0, 2000), (2.0, 200), (0.5, 2000)])
def test_calibrated_p_values_are_valid_where_the_raw_ones_are_not(power: float, n_cal: int) -> None:
    """raw = U**power: power 2 is anti-conservative (P(raw <= a) = sqrt(a)), power 0.5 conservative. With
    n_cal = 200, a = 1e-3 lies below 1 / (n + 1), so only the tail model answers there."""
    rng = random.Random(int(power * 10) + n_cal)
    cal = _fit([rng.random() ** power for _ in range(n_cal)])
    held_out = [rng.random() ** power for _ in range(40_000)]
    calibrated = [cal.p_value(p) for p in held_out]
    for alpha in (1e-2, 1e-3):
        rate = sum(p <= alpha for p in calibrated) / len(held_out)
        # Marginal validity allows the fitted corpus to be a little lucky: 3 binomial sd around alpha.
        assert rate <= alpha + 3 * math.sqrt(alpha / n_cal) + 3 * math.sqrt(alpha / len(held_out)), alpha
    if power > 1:
        assert sum(p <= 1e-2 for p in held_out) / len(held_out) > 0.08  # the raw ones are 10x off


def test_json_round_trip_and_malformed_records() -> None:
    rng = random.Random(1)
    cal = _fit([rng.random() ** 2 for _ in range(300)], tail=20)
    back = SeedCalibration.from_json(json.loads(json.dumps(cal.to_json())))
    assert back == cal
    for p in (0.5, 1e-3, 1e-9):
        assert back.p_value(p) == cal.p_value(p)
    with pytest.raises(WatermarkInputError, match="not a seed calibration"):
        SeedCalibration.from_json({"format": "other"})
    with pytest.raises(WatermarkInputError, match="recalibrate"):
        SeedCalibration.from_json({**cal.to_json(), "version": 99})
    with pytest.raises(WatermarkInputError, match="malformed"):
        SeedCalibration.from_json({**cal.to_json(), "scores": "abc"})
    with pytest.raises(WatermarkInputError, match="malformed"):
        SeedCalibration.from_json({**cal.to_json(), "scores": list(reversed(cal.scores))})
    with pytest.raises(WatermarkInputError, match="at least 100"):
        _fit([0.5] * 99)


def test_engine_applies_each_seeds_calibration(tiny: Any) -> None:
    wm = load_watermarker("credid", WatermarkKey(bytes(16)), 16, model=tiny)
    rng = random.Random(2)
    texts = [torch.randint(100, 4000, (24,), generator=torch.Generator().manual_seed(i)) for i in range(100)]
    keys = [WatermarkKey(rng.randbytes(16)) for _ in range(2)]
    corpus = HumanCorpus.build(wm, texts)
    calibrations = calibrate(wm, keys, corpus, tail=10)
    for key in keys:
        cal = calibrations[key.fingerprint()]
        assert cal.fingerprint == key.fingerprint() and cal.n == 100 and cal.exceedances == 10
        assert cal.settings == calibration_settings(wm) and cal.settings["model"] == tiny.name
    # Cached proxy passes give the same p-values as passes computed on the fly.
    head = HumanCorpus(corpus.ids[:8], corpus.shared[:8])
    assert null_p_values(wm, keys, head) == null_p_values(wm, keys, texts[:8])
    results = wm.extract_candidates(texts[0], keys, calibrations=calibrations)
    for key, result in zip(keys, results, strict=True):
        assert result.calibrated_p_value == calibrations[key.fingerprint()].p_value(result.raw_p_value)
        assert result.p_value == result.calibrated_p_value
    other = load_watermarker("credid", WatermarkKey(bytes(16)), 16, model=tiny, permutations=20)
    with pytest.raises(WatermarkInputError, match="permutations"):
        other.extract_candidates(texts[0], keys, calibrations=calibrations)
    with pytest.raises(WatermarkInputError, match="warm-up"):
        calibrate(wm, keys, [list(range(100, 105))] * 100)


def test_a_p_value_outside_zero_one_is_refused() -> None:
    cal = _fit([0.5] * 100)
    for bad in (float("nan"), -0.1, 1.5):
        with pytest.raises(WatermarkInputError, match="p-value"):
            cal.p_value(bad)
    assert cal.p_value(0.0) < 1e-100 and cal.p_value(1.0) == 1.0
