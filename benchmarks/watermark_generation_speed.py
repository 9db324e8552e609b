"""Watermarked vs unwatermarked generation time, measured in one run (batch 8, 200 new tokens, sampling).

Usage: .venv/bin/python benchmarks/watermark_generation_speed.py [--repeats 3] [--configs ...] [--json]

Each config generates the same 8 prompts (natural passages from the catalogue) for exactly 200 new tokens;
runs of all configs are interleaved round by round so machine drift hits each equally, and the median per
config is compared with the unwatermarked median of the same run. Config syntax: ``plain`` (no processor),
``SCHEME`` or ``SCHEME:opt=value,opt=value`` (e.g. ``credid:proxy_layers=1``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from benchlib import machine_label, parse_config

from safework.core.models import load_causal_lm
from safework.core.types import WatermarkPayload
from safework.watermark.engine import load_watermarker
from safework.watermark.evaluation import passages, split_passage
from safework.watermark.generation import generate
from safework.watermark.keys import WatermarkKey

DEFAULT_CONFIGS = [
    "plain",
    "credid",
    "credid:proxy_vocab=0",
    "credid:proxy_layers=2",
    "credid:proxy_layers=4",
    "credid:proxy_layers=0",
    "mpac",
    "kgw",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--bits", type=int, default=16)
    parser.add_argument("--configs", nargs="*", default=DEFAULT_CONFIGS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    loaded = load_causal_lm("default")
    key = WatermarkKey(bytes(range(16)))
    prompts = [split_passage(p)[0] for p in passages(args.batch)]
    runners = {}
    for config in args.configs:
        name, options = parse_config(config)
        if name == "plain":
            wm = load_watermarker("kgw", key, 0, model=loaded)
            runners[config] = (wm, [None] * len(prompts), False)
        else:
            bits = 0 if name == "kgw" else args.bits
            wm = load_watermarker(name, key, bits, model=loaded, **options)
            runners[config] = (wm, [WatermarkPayload(0xBEEF & ((1 << bits) - 1), bits)] * len(prompts), True)
    times: dict[str, list[float]] = {c: [] for c in runners}
    for round_index in range(args.repeats + 1):  # round 0 warms up caches and kernels
        for config, (wm, payloads, on) in runners.items():
            start = time.perf_counter()
            generate(
                wm,
                prompts,
                payloads,
                max_new_tokens=args.tokens,
                min_new_tokens=args.tokens,
                batch_size=args.batch,
                seed=round_index,
                watermark=on,
                show_progress=False,
            )
            if round_index:
                times[config].append(time.perf_counter() - start)
    base = statistics.median(times["plain"]) if "plain" in times else float("nan")
    rows = [
        {
            "config": c,
            "median_s": statistics.median(t),
            "runs_s": [round(x, 2) for x in t],
            "ratio_vs_plain": statistics.median(t) / base,
        }
        for c, t in times.items()
    ]
    summary = {
        "machine": machine_label(torch.get_num_threads()),
        "batch": args.batch,
        "tokens": args.tokens,
        "bits": args.bits,
        "rows": rows,
    }
    if args.json:
        print(json.dumps(summary))
        return
    print(f"generation, batch {args.batch} x {args.tokens} new tokens, {summary['machine']}")
    for row in rows:
        print(
            f"  {row['config']:<28} median {row['median_s']:7.2f} s  ratio {row['ratio_vs_plain']:.3f}  "
            f"runs {row['runs_s']}"
        )


if __name__ == "__main__":
    main()
