"""Run a real vLLM engine once and write what it generated (run as a script by test_vllm_watermark.py).

vLLM spawns its EngineCore in a new process, which re-imports the main module: everything runs under the
``__main__`` guard, and the test drives this script in a subprocess instead of starting vLLM inside pytest.

    python vllm_generate.py SPEC.json OUT.json

SPEC: {"model": folder, "dtype": "bfloat16", "max_model_len": 512, "engine": {extra LLM kwargs},
       "requests": [{"prompt": str, "seed": int, "max_tokens": int, "min_tokens": int,
                     "temperature": float, "extra_args": {...} | null}, ...]}
      "invalid": [{"prompt": str, "extra_args": {...}}, ...]  (requests vLLM must refuse at admission)
OUT:  {"init_s": float, "generate_s": float, "outputs": [{"token_ids": [...], "text": str}, ...],
       "invalid": [error message | null, ...]}
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(spec_path: str, out_path: str) -> None:
    from vllm import LLM, SamplingParams
    from vllm.exceptions import VLLMValidationError

    spec = json.loads(Path(spec_path).read_text())
    start = time.perf_counter()
    llm = LLM(
        model=spec["model"],
        dtype=spec.get("dtype", "bfloat16"),
        max_model_len=spec.get("max_model_len", 512),
        enforce_eager=True,
        seed=0,
        **spec.get("engine", {}),
    )
    init_s = time.perf_counter() - start
    prompts = [r["prompt"] for r in spec["requests"]]
    params = [
        SamplingParams(
            max_tokens=r.get("max_tokens", 160),
            min_tokens=r.get("min_tokens", 0),
            temperature=r.get("temperature", 1.0),
            seed=r.get("seed"),
            extra_args=r.get("extra_args"),
        )
        for r in spec["requests"]
    ]
    start = time.perf_counter()
    results = llm.generate(prompts, params, use_tqdm=False)
    generate_s = time.perf_counter() - start
    outputs = [{"token_ids": list(r.outputs[0].token_ids), "text": r.outputs[0].text} for r in results]
    refused: list[str | None] = []
    for request in spec.get("invalid", []):
        try:
            llm.generate([request["prompt"]], SamplingParams(max_tokens=4, extra_args=request["extra_args"]))
            refused.append(None)
        except VLLMValidationError as exc:
            refused.append(str(exc))
    Path(out_path).write_text(
        json.dumps({"init_s": init_s, "generate_s": generate_s, "outputs": outputs, "invalid": refused})
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
