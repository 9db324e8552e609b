"""Watermark success and oracle perplexity across chat sampling settings (temperature x top-p), in one run.

Usage: .venv/bin/python benchmarks/watermark_sampling_grid.py [--n 24] [--bits 16] [--tokens 200]
       [--cells 0.7:0.9 0.7:1.0 1.0:0.9 1.0:1.0] [--configs LABEL=PLACEMENT[@MASS]:SCHEME[:opt=v,...] ...]
       [--oracle gemma-3-270m|none] [--offset 1000] [--threads 0] [--texts FILE.jsonl] [--json]

Prompts are held-out catalogue passages (the first 40 words of passages ``--offset`` onwards; evaluation and
the other benchmarks use the first 600) asked as a chat user turn, through the model's chat template, as a
vendor serves them; answers stop on their own or at ``--tokens``. In each cell (temperature T, top-p p),
every config and the unwatermarked model answer the same prompts with the same per-prompt sampling seeds,
in one batch of the project's decoding loop; each config's rows carry random payloads and its bias follows
its placement (``safework.watermark.sampling``): ``before-filters`` (every green raw logit: the old
behaviour), ``after-filters`` (after temperature and top-p, transformers' own watermark processors) or
``nucleus`` (the default: raw logits, green tokens of the tempered 98 % nucleus that the text has not used
after the same context). Reported per config and cell: exact payload success with its Wilson 95 %
interval, mean bit accuracy, mean answer length, the oracle's perplexity of the answer given the user turn
(median, ratio of medians to the unwatermarked answers of the same cell, geometric mean of per-prompt
ratios) and the fraction of repeated token 4-grams.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time
from typing import Any

import torch
from benchlib import machine_label, parse_config

from safework.core.models import load_causal_lm
from safework.core.models.generation import Decoding, generate_chat
from safework.core.types import WatermarkPayload
from safework.watermark.engine import Watermarker, load_watermarker
from safework.watermark.evaluation import decode_stats, passages, split_passage
from safework.watermark.generation import WatermarkLogitsProcessor
from safework.watermark.keys import WatermarkKey
from safework.watermark.oracle import load_oracle, perplexities
from safework.watermark.sampling import NUCLEUS, RowSampling, check_placement

INSTRUCTION = "Continue the following passage in the same style, writing at least three more paragraphs:\n\n"
DEFAULT_CELLS = ["0.7:0.9", "0.7:1.0", "1.0:0.9", "1.0:1.0"]
DEFAULT_CONFIGS = ["old=before-filters:credid", "new=nucleus:credid"]


def parse_labelled(text: str) -> tuple[str, str, str, dict[str, Any]]:
    """``LABEL=PLACEMENT:SCHEME[:opt=v,...]`` -> (label, placement, scheme, options)."""
    label, _, rest = text.partition("=")
    placement, _, config = rest.partition(":")
    if not label or not config:
        raise SystemExit(f"bad config {text!r}; expected LABEL=PLACEMENT:SCHEME[:opt=v,...]")
    name, options = parse_config(config)
    check_placement(placement.partition("@")[0])  # nucleus@MASS: lift green tokens within MASS
    return label, placement, name, options


def repeated_4grams(ids: list[int]) -> float:
    """Fraction of a text's token 4-grams that repeat an earlier one: small chat models loop at low
    temperature, and a loop reads as low perplexity to the oracle, so both figures go together."""
    grams = [tuple(ids[i : i + 4]) for i in range(len(ids) - 3)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def run_cell(
    loaded: Any,
    prompts: list[str],
    payloads: list[WatermarkPayload],
    configs: list[tuple[str, str, Watermarker]],
    temperature: float,
    top_p: float,
    tokens: int,
    seed: int,
) -> tuple[dict[str, list[list[int]]], dict[str, list[str]], float]:
    """Every config's rows and the unwatermarked rows of one cell, in one call of the decoding loop."""
    n = len(prompts)
    groups = [label for label, _, _ in configs] + ["plain"]
    raw: list[Any] = []
    filtered: list[Any] = []
    for g, (_, placement, wm) in enumerate(configs):
        rows: list[WatermarkPayload | None] = [None] * (n * len(groups))
        rows[g * n : (g + 1) * n] = payloads
        base, _, mass = placement.partition("@")
        sampling = (
            RowSampling(temperature, mass=float(mass) if mass else NUCLEUS) if base == "nucleus" else None
        )
        processor = WatermarkLogitsProcessor(wm, rows, sampling=sampling)
        (filtered if base == "after-filters" else raw).append(processor)
    decoding = Decoding(max_new_tokens=tokens, temperature=temperature, top_p=top_p)
    start = time.perf_counter()
    out = generate_chat(
        loaded,
        prompts * len(groups),
        decoding,
        batch_size=n * len(groups),
        seeds=[seed + i for i in range(n)] * len(groups),
        logits_processors=raw,
        filtered_processors=filtered,
    )
    seconds = time.perf_counter() - start
    ids = {label: [list(o.token_ids) for o in out[g * n : (g + 1) * n]] for g, label in enumerate(groups)}
    texts = {label: [o.text for o in out[g * n : (g + 1) * n]] for g, label in enumerate(groups)}
    return ids, texts, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--bits", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--cells", nargs="*", default=DEFAULT_CELLS, help="TEMPERATURE:TOP_P")
    parser.add_argument("--configs", nargs="*", default=DEFAULT_CONFIGS)
    parser.add_argument("--oracle", default="gemma-3-270m", help="'none': skip perplexity")
    parser.add_argument("--offset", type=int, default=1000, help="first catalogue passage used")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--texts", default=None, help="write every answer to this JSONL file")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.n < 24:
        raise SystemExit("--n must be >= 24: fewer prompts cannot tell the configs apart")
    if args.threads:
        torch.set_num_threads(args.threads)

    began = time.perf_counter()
    loaded = load_causal_lm("default")
    key = WatermarkKey(bytes(range(16)))
    rng = random.Random(args.seed)
    users = [INSTRUCTION + split_passage(p)[0] for p in passages(args.n, offset=args.offset)]
    payloads = [WatermarkPayload(rng.getrandbits(args.bits), args.bits) for _ in users]
    configs = []
    for text in args.configs:
        label, placement, name, options = parse_labelled(text)
        configs.append((label, placement, load_watermarker(name, key, args.bits, model=loaded, **options)))
    cells = [tuple(float(v) for v in c.split(":")) for c in args.cells]

    generated: dict[tuple[float, float], tuple[dict[str, list[list[int]]], dict[str, list[str]], float]] = {}
    for temperature, top_p in cells:
        generated[(temperature, top_p)] = run_cell(
            loaded, users, payloads, configs, temperature, top_p, args.tokens, args.seed
        )
        print(
            f"generated T={temperature} top-p={top_p} in {generated[(temperature, top_p)][2]:.0f} s",
            flush=True,
        )
    if args.texts:
        with open(args.texts, "w", encoding="utf-8") as handle:
            for (temperature, top_p), (_, texts, _) in generated.items():
                for label, answers in texts.items():
                    for user, answer in zip(users, answers, strict=True):
                        record = {
                            "T": temperature,
                            "top_p": top_p,
                            "config": label,
                            "prompt": user,
                            "text": answer,
                        }
                        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    oracle = None if args.oracle == "none" else load_oracle(args.oracle)
    rows = []
    for (temperature, top_p), (ids, texts, seconds) in generated.items():
        if oracle is None:  # success only (quick sweeps)
            ppl = {label: [math.nan] * len(t) for label, t in texts.items()}
        else:
            ppl = {label: perplexities(oracle, users, t) for label, t in texts.items()}
        base_median = statistics.median(ppl["plain"])
        for label, placement, wm in configs:
            stats = decode_stats(wm, ids[label], payloads)
            pairs = zip(ppl[label], ppl["plain"], strict=True)
            logs = [math.log(a / b) for a, b in pairs if a > 0 and b > 0] or [math.nan]
            rows.append(
                {
                    "temperature": temperature,
                    "top_p": top_p,
                    "config": label,
                    "placement": placement,
                    "settings": wm.settings(),
                    "success": stats["success"],
                    "bit_accuracy": stats["bit_accuracy"],
                    "detected_1e3": sum(p <= 1e-3 for p in stats["p_values"]),
                    "tokens": statistics.mean(len(i) for i in ids[label]),
                    "ppl_median": statistics.median(ppl[label]),
                    "plain_ppl_median": base_median,
                    "plain_tokens": statistics.mean(len(i) for i in ids["plain"]),
                    "repeated_4grams": statistics.mean(repeated_4grams(i) for i in ids[label]),
                    "plain_repeated_4grams": statistics.mean(repeated_4grams(i) for i in ids["plain"]),
                    "ppl_ratio_median": statistics.median(ppl[label]) / base_median,
                    "ppl_ratio_paired": math.exp(statistics.mean(logs)),
                    "generate_s": seconds,
                }
            )
    summary = {
        "n": args.n,
        "bits": args.bits,
        "tokens": args.tokens,
        "oracle": args.oracle,
        "machine": machine_label(torch.get_num_threads()),
        "total_s": time.perf_counter() - began,
        "rows": rows,
    }
    if args.json:
        print(json.dumps(summary, default=str))
        return
    print(
        f"n={args.n}, {args.bits} bits, <= {args.tokens} tokens, oracle {args.oracle}; {summary['machine']}"
    )
    print(
        "| T | top-p | config | success (95 % CI) | bit acc | tokens | ppl median (plain) | ratio median "
        "| ratio paired | repeated 4-grams (plain) | p <= 1e-3 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        s = r["success"]
        print(
            f"| {r['temperature']:g} | {r['top_p']:g} | {r['config']} ({r['placement']}) | {s['k']}/{s['n']} "
            f"({s['ci_low']:.2f}-{s['ci_high']:.2f}) | {r['bit_accuracy']:.3f} | {r['tokens']:.0f} | "
            f"{r['ppl_median']:.1f} ({r['plain_ppl_median']:.1f}) | {r['ppl_ratio_median']:.2f} | "
            f"{r['ppl_ratio_paired']:.2f} | {r['repeated_4grams']:.2f} ({r['plain_repeated_4grams']:.2f}) | "
            f"{r['detected_1e3']}/{s['n']} |"
        )
    print(f"total {summary['total_s']:.0f} s")


if __name__ == "__main__":
    main()
