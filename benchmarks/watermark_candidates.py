"""Extraction of one text under N candidate keys: the shared proxy pass vs one full extraction per key.

Usage: .venv/bin/python benchmarks/watermark_candidates.py [--texts 4] [--repeats 5] [--sizes 1 8 32]
       [--threads 1]

A vendor asked to attribute a text extracts it under every seed the TTP issued to it. credid's proxy pass
does not depend on the key, so ``Watermarker.extract_candidates`` runs it once per text and only the keyed
hashing per key; the baseline is ``with_key(k).extract_ids(ids)`` for every key. Embedded SmolLM2, credid
16-bit defaults, human catalogue passages of at least 200 tokens, cut to 200. Results are checked equal
before timing; the two paths alternate within each repeat and the script prints the median seconds per text
of each.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
from benchlib import machine_label

from safework.core.models import load_causal_lm
from safework.watermark.engine import Watermarker, load_watermarker
from safework.watermark.evaluation import passages, split_passage
from safework.watermark.keys import WatermarkKey


def _fast(wm: Watermarker, texts: list[torch.Tensor], keys: list[WatermarkKey]) -> float:
    start = time.perf_counter()
    for ids in texts:
        wm.extract_candidates(ids, keys)
    return (time.perf_counter() - start) / len(texts)


def _loop(wm: Watermarker, texts: list[torch.Tensor], keys: list[WatermarkKey]) -> float:
    start = time.perf_counter()
    for ids in texts:
        for key in keys:
            wm.with_key(key).extract_ids(ids)
    return (time.perf_counter() - start) / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 32])
    # One thread by default: on a shared 2-core box two OpenMP threads stall each other (6x slower).
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    loaded = load_causal_lm("default")
    wm = load_watermarker("credid", WatermarkKey(bytes(16)), 16, model=loaded)
    tokenizer = loaded.tokenizer
    encoded = [tokenizer(split_passage(t)[1], add_special_tokens=False)["input_ids"] for t in passages(60)]
    texts = [torch.tensor(ids[:200]) for ids in encoded if len(ids) >= 200][: args.texts]
    rng = random.Random(0)
    keys = [WatermarkKey(rng.randbytes(16)) for _ in range(max(args.sizes))]

    # Same results first: bit-exact payloads, p-values equal.
    for got, key in zip(wm.extract_candidates(texts[0], keys[:8]), keys[:8], strict=True):
        alone = wm.with_key(key).extract_ids(texts[0])
        assert got.payload == alone.decoded and got.raw_p_value == alone.p_value, key.fingerprint()
    print(
        f"{len(texts)} human texts x {sum(len(t) for t in texts) // len(texts)} tokens, credid 16-bit, "
        f"{machine_label(torch.get_num_threads())}; results equal to the per-key loop",
        flush=True,
    )
    _fast(wm, texts[:1], keys[:2])  # warm-up (native op load, allocator)
    _loop(wm, texts[:1], keys[:2])

    fast: dict[int, list[float]] = {n: [] for n in args.sizes}
    loop: dict[int, list[float]] = {n: [] for n in args.sizes}
    for r in range(args.repeats):
        for n in args.sizes:
            order = (_fast, _loop) if r % 2 == 0 else (_loop, _fast)
            for fn in order:
                (fast if fn is _fast else loop)[n].append(fn(wm, texts, keys[:n]))
        print(f"  repeat {r + 1}/{args.repeats} done", flush=True)
    print("| N keys | shared proxy, s/text | per-key loop, s/text | loop / shared | runs (shared; loop) |")
    print("|---|---|---|---|---|")
    for n in args.sizes:
        f, lp = statistics.median(fast[n]), statistics.median(loop[n])
        runs = ", ".join(f"{x:.3f}" for x in fast[n]) + "; " + ", ".join(f"{x:.3f}" for x in loop[n])
        print(f"| {n} | {f:.3f} | {lp:.3f} | {lp / f:.2f} | {runs} |")


if __name__ == "__main__":
    main()
