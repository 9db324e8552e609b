"""End to end: a real vLLM engine (CPU) watermarks per request through the plugin, safework extracts.

One engine start (~25 s on 2 cores, plus ~10 s to spawn) serves every request: two payloads, one request
without a watermark, and two malformed requests that vLLM must refuse at admission.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from safework.core.types import WatermarkPayload
from safework.watermark.engine import load_watermarker
from safework.watermark.keys import WatermarkKey
from safework.watermark.vllm_processor import EXTRA_ARGS_KEY

SCRIPT = Path(__file__).with_name("vllm_generate.py")
SCHEME, BITS = "credid", 16
KEY = WatermarkKey.from_hex("5afe0f0ccacc1a0d5afe0f0ccacc1a0d")
PROMPTS = [
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how bread rises, step by step, for a curious ten-year-old.",
    "Describe a walk through a busy market in the morning.",
]
PAYLOADS: list[str | None] = ["beef", "1c3a", None]


@pytest.mark.slow
def test_vllm_engine_embeds_a_payload_per_request(
    model_dir: Path, tmp_path: Path, vllm_env: Callable[..., dict[str, str]]
) -> None:
    key_file = KEY.to_file(tmp_path / "key.json")
    requests = [
        {
            "prompt": prompt,
            "seed": 100 + i,
            "max_tokens": 200,
            "min_tokens": 200,
            "temperature": 1.0,
            "extra_args": None if payload is None else {EXTRA_ARGS_KEY: {"payload": payload}},
        }
        for i, (prompt, payload) in enumerate(zip(PROMPTS, PAYLOADS, strict=True))
    ]
    invalid = [
        {"prompt": PROMPTS[0], "extra_args": {EXTRA_ARGS_KEY: {"payload": "beef", "bits": 8}}},
        {"prompt": PROMPTS[0], "extra_args": {EXTRA_ARGS_KEY: {"payload": "not-hex"}}},
    ]
    spec = {
        "model": str(model_dir),
        "dtype": "bfloat16",
        "max_model_len": 512,
        "requests": requests,
        "invalid": invalid,
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = vllm_env(
        SAFEWORK_WATERMARK_SCHEME=SCHEME,
        SAFEWORK_WATERMARK_KEY_FILE=str(key_file),
        SAFEWORK_WATERMARK_BITS=str(BITS),
    )
    out = tmp_path / "out.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "spec.json"), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    result = json.loads(out.read_text())
    print(f"vLLM init {result['init_s']:.1f} s, generate {result['generate_s']:.1f} s")

    assert [e is not None and "16-bit" in e for e in result["invalid"]] == [True, False]
    assert "not hexadecimal" in result["invalid"][1]

    watermarker = load_watermarker(SCHEME, KEY, BITS, model=str(model_dir))
    for output, payload in zip(result["outputs"], PAYLOADS, strict=True):
        assert len(output["token_ids"]) == 200
        extraction = watermarker.extract_ids(output["token_ids"])
        report = json.dumps(extraction.to_json())
        if payload is None:
            assert extraction.payload is None and not extraction.detected, report
            assert extraction.p_value > watermarker.alpha, report
        else:
            assert extraction.payload == WatermarkPayload.from_hex(payload, BITS), report
            assert extraction.p_value < watermarker.alpha, report
