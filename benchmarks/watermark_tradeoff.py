"""Success, bit accuracy and oracle perplexity of watermark configurations on the same prompts, in one run.

Usage: .venv/bin/python benchmarks/watermark_tradeoff.py [--n 24] [--bits 16] [--oracle gemma-3-270m]
       [--configs credid:delta=2.5 mpac:delta=2.0 ...] [--attack substitution:0.1] [--json]

The unwatermarked continuations of the same prompts (same sampling seeds) are generated once and give the
perplexity baseline, so every ratio is watermarked/unwatermarked on identical prompts. This is the script
behind the choice of credid's defaults (delta, tau, proxy depth) and the credid-vs-mpac comparison at a
matched perplexity budget. Config syntax: ``SCHEME`` or ``SCHEME:opt=value,opt=value``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any

from benchlib import parse_config

from safework.core.models import load_causal_lm
from safework.core.plugins import collect
from safework.core.types import WatermarkPayload
from safework.watermark.attacks import parse_attack_spec
from safework.watermark.engine import load_watermarker
from safework.watermark.evaluation import attacked_ids, decode_stats, passages, split_passage
from safework.watermark.generation import generate
from safework.watermark.keys import WatermarkKey
from safework.watermark.metrics import summarize
from safework.watermark.oracle import load_oracle, perplexities


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--bits", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--oracle", default="gemma-3-270m")
    parser.add_argument("--configs", nargs="*", default=["credid", "mpac"])
    parser.add_argument("--attack", default=None, help="also decode after NAME:STRENGTH")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    loaded = load_causal_lm("default")
    key = WatermarkKey(bytes(range(16)))
    rng = random.Random(args.seed)
    prompts = [split_passage(p)[0] for p in passages(args.n)]
    payloads = [WatermarkPayload(rng.getrandbits(args.bits), args.bits) for _ in prompts]
    common: dict[str, Any] = {"max_new_tokens": args.tokens, "min_new_tokens": args.tokens, "seed": args.seed}
    plain_wm = load_watermarker("kgw", key, 0, model=loaded)
    plain = generate(plain_wm, prompts, [None] * len(prompts), watermark=False, **common)
    texts: dict[str, list[str]] = {"plain": [g.text for g in plain]}
    rows = []
    for config in args.configs:
        name, options = parse_config(config)
        wm = load_watermarker(name, key, args.bits, model=loaded, **options)
        start = time.perf_counter()
        marked = generate(wm, prompts, payloads, **common)
        seconds = time.perf_counter() - start
        stats = decode_stats(wm, [g.ids for g in marked], payloads)
        row = {
            "config": config,
            "settings": wm.settings(),
            "generate_s": seconds,
            "success": stats["success"]["rate"],
            "bit_accuracy": stats["bit_accuracy"],
            "median_p": stats["p_value"]["median"],
        }
        if args.attack:
            attack_name, strength = parse_attack_spec(args.attack)
            attack = collect("register_attacks")[attack_name]
            ids = attacked_ids(wm, [g.text for g in marked], attack, strength, args.seed)
            attacked = decode_stats(wm, ids, payloads)
            row["attacked_success"] = attacked["success"]["rate"]
            row["attacked_bit_accuracy"] = attacked["bit_accuracy"]
        texts[config] = [g.text for g in marked]
        rows.append(row)
        print(json.dumps(row), flush=True)
    oracle = load_oracle(args.oracle)
    ppl = {name: summarize(perplexities(oracle, prompts, t)) for name, t in texts.items()}
    for row in rows:
        row["ppl_median"] = ppl[row["config"]]["median"]
        row["ppl_ratio_median"] = ppl[row["config"]]["median"] / ppl["plain"]["median"]
        row["ppl_ratio_mean"] = ppl[row["config"]]["mean"] / ppl["plain"]["mean"]
    summary = {
        "n": args.n,
        "bits": args.bits,
        "tokens": args.tokens,
        "oracle": args.oracle,
        "plain_ppl": ppl["plain"],
        "rows": rows,
    }
    if args.json:
        print(json.dumps(summary))
        return
    print(
        f"n={args.n}, {args.bits} bits, {args.tokens} tokens, oracle {args.oracle}, "
        f"plain median ppl {ppl['plain']['median']:.2f}"
    )
    for row in rows:
        extra = (
            f" attacked: success {row['attacked_success']:.3f} bit acc {row['attacked_bit_accuracy']:.4f}"
            if args.attack
            else ""
        )
        print(
            f"  {row['config']:<40} success {row['success']:.3f} bit acc {row['bit_accuracy']:.4f} "
            f"ppl ratio {row['ppl_ratio_median']:.3f} (mean {row['ppl_ratio_mean']:.3f}) "
            f"gen {row['generate_s']:.0f}s{extra}"
        )


if __name__ == "__main__":
    main()
