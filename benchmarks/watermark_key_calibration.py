"""Known-payload p-values on human text under one key at a time: how far one key's false-positive rate strays.

Usage: .venv/bin/python benchmarks/watermark_key_calibration.py [--texts 300] [--keys 6] [--context-width 1]

For a fixed text the credid known-payload p-value is exactly uniform over keys (``evaluate`` checks this
with a fresh key per text). A TTP, though, tests one seed against many texts: under one key, texts share
their common contexts ("of the", ", and") and so the permutation those contexts use, and their p-values
move together. This script draws ``--keys`` random keys, each with one random 16-bit payload, and prints per
key the KS statistic and the fraction of human texts below 0.05, 0.01 and 0.001. Averaged over keys the
fractions match the levels; a single key's can be several times off.

The proxy distributions do not depend on the key, so they are computed once per text and reused.
"""

from __future__ import annotations

import argparse
import random
import statistics
from typing import Any

import torch

from safework.core.models import load_causal_lm
from safework.core.types import WatermarkPayload
from safework.watermark.engine import load_watermarker
from safework.watermark.evaluation import passages, split_passage
from safework.watermark.keys import WatermarkKey
from safework.watermark.metrics import ks_uniform

LEVELS = (0.05, 0.01, 0.001)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=300)
    parser.add_argument("--keys", type=int, default=6)
    parser.add_argument("--context-width", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    loaded = load_causal_lm("default")
    base = load_watermarker(
        "credid", WatermarkKey(bytes(16)), 16, model=loaded, context_width=args.context_width
    )
    proxy = base.scheme.proxy  # shared by every rekeyed copy
    computed = proxy.along
    cache: dict[tuple[bytes, bytes], Any] = {}

    def along(ids: torch.Tensor, positions: torch.Tensor, **kwargs: Any) -> Any:
        key = (ids.numpy().tobytes(), positions.numpy().tobytes())
        if key not in cache:
            cache[key] = computed(ids, positions, **kwargs)
        return cache[key]

    proxy.along = along  # type: ignore[method-assign]
    tokenizer = loaded.tokenizer
    texts = [
        tokenizer(split_passage(t)[1], add_special_tokens=False)["input_ids"][:200]
        for t in passages(args.texts, offset=100)
    ]
    rng = random.Random(args.seed)
    print(f"{len(texts)} human texts, credid 16-bit, context width {args.context_width}")
    rates: dict[float, list[float]] = {level: [] for level in LEVELS}
    for k in range(args.keys):
        wm = base.with_key(WatermarkKey(rng.randbytes(16)))
        payload = WatermarkPayload(rng.getrandbits(16), 16)
        p_values = [wm.known_payload_p_value(ids, payload) for ids in texts]
        row = []
        for level in LEVELS:
            rate = sum(p <= level for p in p_values) / len(p_values)
            rates[level].append(rate)
            row.append(f"P(p<={level:g}) {rate:.4f}")
        print(f"  key {k}: KS {ks_uniform(p_values)[0]:.3f}  " + "  ".join(row), flush=True)
    print("  mean over keys: " + "  ".join(f"P(p<={lv:g}) {statistics.mean(rates[lv]):.4f}" for lv in LEVELS))


if __name__ == "__main__":
    main()
