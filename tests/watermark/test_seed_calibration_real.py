"""Per-seed calibration on real text: the embedded SmolLM2 proxy and human passages from the catalogue."""

from __future__ import annotations

import json
import math

import pytest

pytestmark = pytest.mark.slow

N_CAL, N_HELD, TOKENS = 300, 200, 120


def test_a_calibrated_seed_holds_its_level_on_held_out_human_passages() -> None:
    """One seed, 300 calibration and 200 held-out passages (120 tokens; ~45 s with one torch thread).
    The calibrated p-value is at least the rank against the seed's own null, so on held-out text its
    false-positive rate at alpha stays within alpha plus the scatter of a 300-text corpus and of a
    200-text sample (3 sd each); on the calibration texts themselves it is at least the exact rank."""
    import torch

    from safework.core.models import load_causal_lm
    from safework.watermark.calibration import SeedCalibration, calibration_settings, null_p_values
    from safework.watermark.engine import load_watermarker
    from safework.watermark.evaluation import passages, split_passage
    from safework.watermark.keys import WatermarkKey

    loaded = load_causal_lm("default")
    wm = load_watermarker("credid", WatermarkKey(bytes(16)), 16, model=loaded)
    texts = [
        loaded.tokenizer(split_passage(t)[1], add_special_tokens=False)["input_ids"][:TOKENS]
        for t in passages(N_CAL + N_HELD, offset=600)
    ]
    seed = WatermarkKey(bytes(range(16, 32)))
    raw = null_p_values(wm, [seed], texts)[0]  # one proxy pass per text
    cal = SeedCalibration.fit(seed.fingerprint(), calibration_settings(wm), raw[:N_CAL], tail=30)
    in_sample = [cal.p_value(p) for p in raw[:N_CAL]]
    held = [cal.p_value(p) for p in raw[N_CAL:]]
    for alpha in (0.2, 0.1, 0.05):
        assert sum(p <= alpha for p in in_sample) <= alpha * (N_CAL + 1)
        bound = alpha + 3 * math.sqrt(alpha / N_CAL) + 3 * math.sqrt(alpha * (1 - alpha) / N_HELD)
        assert sum(p <= alpha for p in held) / N_HELD <= bound, (alpha, sorted(held)[:20])
    assert min(held) >= 1e-12  # no human text looks watermarked under the fitted tail

    # The vendor's path: stored as JSON with the grant, applied by extract_candidates.
    stored = SeedCalibration.from_json(json.loads(json.dumps(cal.to_json())))
    calibrations = {seed.fingerprint(): stored}
    results = wm.extract_candidates(torch.tensor(texts[N_CAL]), [seed], calibrations=calibrations)
    assert results[0].raw_p_value == raw[N_CAL] and results[0].calibrated_p_value == held[0]
