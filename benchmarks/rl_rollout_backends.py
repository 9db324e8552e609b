"""Rollout throughput: the ``hf`` backend (core generation loop, in process) vs ``vllm`` (CPU server).

Both roll out the embedded SmolLM2-135M-Instruct (float32) on the same 8 prompts, G = 4 samples each, up to 64
new tokens at temperature 1 / top-p 1 under the SafeLadder think system prompt, with the same per-response
seeds. The vLLM server starts from the same weights (the engine saves the loaded model as an HF folder).
Tokens/s = generated tokens (stop token included) / wall seconds of one ``generate`` call; median of
``--repeats`` calls after one warm-up call each, every call at a new step (new seeds). Also prints the vLLM
server's start-up time and one weight sync (file hand-off + parity probe).

Usage: .venv/bin/python benchmarks/rl_rollout_backends.py [--repeats 3] [--threads N] [--json]
(needs .venv-vllm: `make test-vllm` builds it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for package in ("core", "verifiers", "rl"):
    sys.path.insert(0, str(ROOT / "packages" / package / "src"))

import torch  # noqa: E402
from benchlib import machine_label  # noqa: E402

from safework.core.models import load_causal_lm  # noqa: E402
from safework.rl.rollout.base import PromptItem, RolloutEngine, RolloutSettings  # noqa: E402
from safework.rl.rollout.hf import HFRolloutEngine  # noqa: E402
from safework.rl.rollout.vllm import VLLMRolloutEngine  # noqa: E402

PROMPTS = [
    "What is 17 times 3?",
    "Is it safe to mix bleach and ammonia?",
    "Name three primary colours.",
    "Explain why the sky is blue in one sentence.",
    "A train travels 60 km in 45 minutes. What is its speed in km/h?",
    "How do I store raw chicken in the fridge?",
    "Write a haiku about autumn.",
    "What is the capital of Australia?",
]


def throughput(engine: RolloutEngine, settings: RolloutSettings, repeats: int) -> tuple[float, list[float]]:
    """Median tokens/s of ``repeats`` generate calls (after a warm-up) and the per-call figures."""
    items = [PromptItem(p, "bench") for p in PROMPTS]
    engine.generate(items, settings, seed=0, step=0)
    rates = []
    for step in range(1, repeats + 1):
        start = time.perf_counter()
        rollouts = engine.generate(items, settings, seed=0, step=step)
        rates.append(sum(r.length for r in rollouts) / (time.perf_counter() - start))
    return statistics.median(rates), rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads of the hf side (0: default)")
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = RolloutSettings(
        samples=args.samples, max_new_tokens=args.max_new_tokens, batch_size=len(PROMPTS) * args.samples
    )
    loaded = load_causal_lm("default")
    hf_rate, hf_runs = throughput(HFRolloutEngine(loaded), settings, args.repeats)
    start = time.perf_counter()
    with VLLMRolloutEngine(loaded, max_model_len=1024) as engine:
        startup = time.perf_counter() - start
        sync = engine.sync(loaded.model)
        vllm_rate, vllm_runs = throughput(engine, settings, args.repeats)
    summary = {
        "machine": machine_label(torch.get_num_threads()),
        "shape": f"{len(PROMPTS)} prompts x {args.samples} samples x <= {args.max_new_tokens} tokens",
        "hf_tokens_per_s": hf_rate,
        "vllm_tokens_per_s": vllm_rate,
        "vllm_over_hf": vllm_rate / hf_rate,
        "hf_runs": hf_runs,
        "vllm_runs": vllm_runs,
        "vllm_startup_s": startup,
        "vllm_sync_s": sync.seconds,
        "vllm_sync_max_abs_diff": sync.max_abs_diff,
    }
    if not args.json:
        print(f"{summary['machine']}; {summary['shape']}")
        print(f"hf   {hf_rate:8.1f} tokens/s (median of {args.repeats})")
        print(
            f"vllm {vllm_rate:8.1f} tokens/s (median of {args.repeats}); vllm/hf {vllm_rate / hf_rate:.2f}x"
        )
        print(
            f"vllm server start {startup:.1f}s, sync {sync.seconds:.2f}s (probe diff {sync.max_abs_diff:.2g})"
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
