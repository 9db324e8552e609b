"""Per-seed false-attribution rate on held-out human text: the decoder's p-value vs the seed-calibrated one.

Usage: .venv/bin/python benchmarks/watermark_seed_calibration.py [--calibration 1000] [--held-out 1000]
       [--keys 8] [--small 200] [--out benchmarks/results/watermark_seed_calibration.json]
       .venv/bin/python benchmarks/watermark_seed_calibration.py --from-json FILE  (re-analyse saved p-values)

Embedded SmolLM2, credid 16-bit defaults. Human texts: catalogue passages (XSum, BoolQ, QuAC) after their
first 40 words, cut to 200 tokens; the first ``--calibration`` are the calibration corpus, the next
``--held-out`` are never seen by it. For each of ``--keys`` random seeds the script computes the decoder's
presence p-value of every text (one proxy pass per text, shared by all seeds), fits a
``SeedCalibration`` on the calibration texts, and counts held-out texts at or below alpha, uncorrected and
calibrated, with Wilson 95 % intervals. ``small``: the same with a calibration of only ``--small`` texts,
so alpha = 1e-3 lies below 1 / (n + 1) and only the fitted tail answers there (the extrapolation check).
Pooled rows add the Bonferroni levels alpha / 32 a vendor with 32 candidate seeds uses.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import torch
from benchlib import machine_label

from safework.core.models import load_causal_lm
from safework.watermark.calibration import SeedCalibration, calibration_settings, null_p_values
from safework.watermark.engine import load_watermarker
from safework.watermark.evaluation import passages, split_passage
from safework.watermark.keys import WatermarkKey
from safework.watermark.metrics import wilson_interval

LEVELS = (1e-2, 1e-3)
POOLED_LEVELS = (1e-2, 1e-3, 1e-2 / 32, 1e-3 / 32)


def _measure(args: argparse.Namespace) -> dict[str, Any]:
    loaded = load_causal_lm("default")
    wm = load_watermarker("credid", WatermarkKey(bytes(16)), 16, model=loaded)
    tokenizer = loaded.tokenizer
    total = args.calibration + args.held_out
    texts = [
        tokenizer(split_passage(t)[1], add_special_tokens=False)["input_ids"][:200]
        for t in passages(total, offset=0)
    ]
    rng = random.Random(args.seed)
    keys = [WatermarkKey(rng.randbytes(16)) for _ in range(args.keys)]
    print(f"{total} human texts, {args.keys} seeds, {machine_label(torch.get_num_threads())}", flush=True)
    raw: list[list[float]] = [[] for _ in keys]
    start = time.perf_counter()
    for first in range(0, total, 100):
        for row, chunk in zip(raw, null_p_values(wm, keys, texts[first : first + 100]), strict=True):
            row.extend(chunk)
        done = min(total, first + 100)
        print(f"  {done}/{total} texts, {time.perf_counter() - start:.0f} s", flush=True)
    return {
        "settings": calibration_settings(wm),
        "calibration": args.calibration,
        "held_out": args.held_out,
        "seconds": time.perf_counter() - start,
        "tokens": [len(t) for t in texts],
        "fingerprints": [k.fingerprint() for k in keys],
        "raw_p_values": raw,
    }


def _rate(k: int, n: int) -> str:
    low, high = wilson_interval(k, n)
    return f"{k}/{n} = {k / n:.4f} ({low:.4f}-{high:.4f})"


def _report(data: dict[str, Any], small: int) -> None:
    n_cal, n_hold = data["calibration"], data["held_out"]
    settings = data["settings"]
    print(f"\ncalibration {n_cal} texts, held out {n_hold}, measured in {data['seconds']:.0f} s")
    columns = f"uncorrected | calibrated (n = {n_cal}) | calibrated (n = {small})"
    print(f"\n| seed | tail: k, raw p at u, beta | alpha | {columns} |")
    print("|---|---|---|---|---|---|")
    pooled: dict[str, dict[float, int]] = {
        name: dict.fromkeys(POOLED_LEVELS, 0) for name in ("raw", "cal", "small")
    }
    mapping = []
    for i, (fingerprint, raw) in enumerate(zip(data["fingerprints"], data["raw_p_values"], strict=True)):
        cal = SeedCalibration.fit(fingerprint, settings, raw[:n_cal])
        tiny = SeedCalibration.fit(fingerprint, settings, raw[:small])
        held = raw[n_cal : n_cal + n_hold]
        values = {
            "raw": held,
            "cal": [cal.p_value(p) for p in held],
            "small": [tiny.p_value(p) for p in held],
        }
        for name, ps in values.items():
            for level in POOLED_LEVELS:
                pooled[name][level] += sum(p <= level for p in ps)
        for level in LEVELS:
            cells = [
                _rate(sum(p <= level for p in values[name]), len(held)) for name in ("raw", "cal", "small")
            ]
            tail = f"{cal.exceedances}, {math.exp(-cal.threshold):.3f}, {cal.rate:.2f}"
            print(f"| {i} | {tail} | {level:g} | " + " | ".join(cells) + " |")
        mapping.append([cal.p_value(p) for p in (1e-2, 1e-3, 1e-5, 1e-8)])
    total = n_hold * len(data["fingerprints"])
    print(f"\npooled over seeds ({total} held-out tests per cell)")
    print(f"| alpha | {columns} |")
    print("|---|---|---|---|")
    for level in POOLED_LEVELS:
        cells = [_rate(pooled[name][level], total) for name in ("raw", "cal", "small")]
        print(f"| {level:.2g} | " + " | ".join(cells) + " |")
    print(f"\ncalibrated p-value at raw p = 1e-2, 1e-3, 1e-5, 1e-8 (n = {n_cal}), per seed:")
    for i, row in enumerate(mapping):
        print(f"  seed {i}: " + ", ".join(f"{p:.2g}" for p in row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", type=int, default=1000)
    parser.add_argument("--held-out", type=int, default=1000)
    parser.add_argument("--keys", type=int, default=8)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/watermark_seed_calibration.json")
    )
    parser.add_argument("--from-json", type=Path, default=None)
    args = parser.parse_args()
    if args.from_json is not None:
        data = json.loads(args.from_json.read_text())
    else:
        data = _measure(args)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(data) + "\n")
        print(f"raw p-values saved to {args.out}")
    _report(data, args.small)


if __name__ == "__main__":
    main()
