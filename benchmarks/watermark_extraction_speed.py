"""Extraction throughput: safework credid (16-bit payload, proxy forward included) vs transformers'
``WatermarkDetector`` (zero-bit KGW) on the same token sequences, in one run.

Usage: .venv/bin/python benchmarks/watermark_extraction_speed.py [--texts 32] [--tokens 200] [--repeats 3]
       [--json]

Texts are human continuations from the catalogue cut to ``--tokens`` tokens (extraction cost does not depend
on whether a text is watermarked). transformers' detector gets the whole batch as one tensor, its fastest
path; ours extracts text by text as the CLI does. Also reported: our kgw and mpac extractors.
"""

from __future__ import annotations

import argparse
import json

import torch
from benchlib import machine_label, median_seconds
from transformers import WatermarkDetector, WatermarkingConfig

from safework.core.models import load_causal_lm
from safework.watermark.engine import load_watermarker
from safework.watermark.evaluation import passages, split_passage
from safework.watermark.keys import WatermarkKey


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    loaded = load_causal_lm("default")
    tok = loaded.tokenizer
    rows = []
    for text in passages(args.texts * 2):
        ids = tok(split_passage(text)[1], add_special_tokens=False)["input_ids"]
        if len(ids) >= args.tokens:
            rows.append(ids[: args.tokens])
        if len(rows) == args.texts:
            break
    batch = torch.tensor(rows, dtype=torch.int64)
    n_tokens = batch.numel()
    key = WatermarkKey(bytes(range(16)))

    config = WatermarkingConfig(greenlist_ratio=0.25, bias=2.0, seeding_scheme="lefthash", context_width=1)
    detector = WatermarkDetector(model_config=loaded.model.config, device="cpu", watermarking_config=config)
    results = {"transformers WatermarkDetector (kgw)": median_seconds(lambda: detector(batch), args.repeats)}
    for name, bits in (("credid", 16), ("kgw", 0), ("mpac", 16)):
        wm = load_watermarker(name, key, bits, model=loaded)
        label = f"safework {name}" + (f" ({bits}-bit)" if bits else "")
        results[label] = median_seconds(lambda wm=wm: [wm.extract_ids(r) for r in batch], args.repeats)
    base = n_tokens / results["transformers WatermarkDetector (kgw)"]
    table = [
        {
            "extractor": k,
            "seconds": v,
            "tokens_per_s": n_tokens / v,
            "ratio_vs_transformers": n_tokens / v / base,
        }
        for k, v in results.items()
    ]
    summary = {
        "machine": machine_label(torch.get_num_threads()),
        "texts": len(rows),
        "tokens_per_text": args.tokens,
        "rows": table,
    }
    if args.json:
        print(json.dumps(summary))
        return
    print(f"extraction of {len(rows)} texts x {args.tokens} tokens, {summary['machine']}")
    for row in table:
        print(
            f"  {row['extractor']:<40} {row['tokens_per_s']:9.0f} tokens/s  "
            f"ratio {row['ratio_vs_transformers']:.2f}"
        )


if __name__ == "__main__":
    main()
