"""The embedded SmolLM2 generator end to end through the CLI: what `make demo` shows a user."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _safework(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "safework.core.cli", *args], capture_output=True, text=True, timeout=900
    )


def test_credid_payload_survives_embed_and_extract_on_the_embedded_model(tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    assert _safework("watermark", "keygen", "--out", str(key)).returncode == 0
    common = ["--scheme", "credid", "--key-file", str(key), "--bits", "16"]
    embed = _safework(
        "watermark",
        "embed",
        *common,
        "--payload",
        "c0de",
        "--prompt",
        "The old lighthouse keeper climbed the stairs every evening, and",
        "--max-new-tokens",
        "200",
        "--min-new-tokens",
        "200",
        "--json",
    )
    assert embed.returncode == 0, embed.stderr
    record = json.loads(embed.stdout)
    assert record["payload"] == "c0de" and record["tokens"] == 200
    extract = _safework("watermark", "extract", *common, "--text", record["text"], "--json")
    assert extract.returncode == 0, extract.stderr
    result = json.loads(extract.stdout)
    assert result["payload"] == "c0de" and result["p_value"] < 1e-6
    assert min(result["bit_confidence"]) > 0.9
    plain = _safework(
        "watermark",
        "extract",
        *common,
        "--text",
        "The committee published its annual report on Tuesday. It found that spending on roads "
        "rose by four percent while the number of new schools fell, and it recommended a review "
        "of the funding formula before the next budget is set in the spring.",
        "--json",
    )
    assert plain.returncode == 0 and json.loads(plain.stdout)["payload"] is None


def test_p_values_on_human_text_are_calibrated_with_the_embedded_proxy() -> None:
    """Real human continuations from the catalogue, the real SmolLM2 proxy: under a fresh key per text the
    known-payload p-values pass a KS uniformity test, and the vendor's key detects at most one of 80 at
    alpha = 1e-3 (expected 0.08; two or more has probability ~0.003). Under this fixed test key one passage
    (offset 236, a Dewey quotation) decodes at p = 1e-5 with 8-bit symbols; over 300 random keys that text's
    smallest p-value is 0.015, so it is a property of the key, not of the text."""
    from safework.core.models import load_causal_lm
    from safework.core.types import WatermarkPayload
    from safework.watermark.engine import load_watermarker
    from safework.watermark.evaluation import human_controls
    from safework.watermark.keys import WatermarkKey

    wm = load_watermarker("credid", WatermarkKey(bytes(range(16))), 16, model=load_causal_lm("default"))
    report = human_controls(wm, 80, WatermarkPayload(0xC0DE, 16), offset=200, seed=5)
    assert report["n"] == 80
    assert report["false_positives"]["k"] <= 1
    assert report["known_payload_ks"]["p_value"] > 1e-3
