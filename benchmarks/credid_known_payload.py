"""Attribution power: the known-payload test a vendor can run vs the decoder's search over payloads.

Usage: .venv/bin/python benchmarks/credid_known_payload.py [--delta 2.5] [--first 30] [--n 30]
       [--mass 0.98] [--threshold 3.3e-4] [--human 200]

SmolLM2 answers the demo's chat requests (``safework.watermark.demo.chat_prompts(90, 0)[first:first+n]``)
through its chat template at temperature 0.7 / top-p 0.9, watermarked with credid (16 bits, one key and
payload); each answer is re-tokenised from its text, as a vendor receives it, and tested two ways: the
decoder's presence p-value (best payload, corrected for the search) and the exact test that it carries the
known payload. Then the same two tests on human passages (the demo's), for the false-positive side. Prints
counts at ``--threshold`` (alpha 1e-3 Holm-corrected over the demo's 3 vendors) and the failures.
"""

from __future__ import annotations

import argparse

from safework.core.types import WatermarkPayload
from safework.watermark.demo import chat_prompts, human_passages
from safework.watermark.engine import load_watermarker
from safework.watermark.generation import generate
from safework.watermark.keys import WatermarkKey


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delta", type=float, default=2.5)
    parser.add_argument("--first", type=int, default=30)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--threshold", type=float, default=3.3e-4)
    parser.add_argument("--human", type=int, default=200)
    args = parser.parse_args()

    key, payload = WatermarkKey(bytes(range(16))), WatermarkPayload(0xBEEF, 16)
    wm = load_watermarker("credid", key, bits=16, delta=args.delta)
    prompts = chat_prompts(90, 0)[args.first : args.first + args.n]
    outs = generate(
        wm, prompts, [payload] * len(prompts), max_new_tokens=200, temperature=0.7, top_p=0.9, chat=True,
        batch_size=16, seed=args.first, show_progress=False,
    )  # fmt: skip
    search = known = 0
    for out in outs:
        ids = wm.tokenize(out.text)
        if len(ids) <= wm.scheme.warmup:
            print(f"  {len(ids)}-token answer: nothing to test")
            continue
        result = wm.extract_candidates(ids, [key], payloads=[payload])[0]
        assert result.known_payload_p_value is not None
        search += result.raw_p_value <= args.threshold
        known += result.known_payload_p_value <= args.threshold
        if result.known_payload_p_value > args.threshold:
            print(f"  miss: {len(ids)} tokens, search p {result.raw_p_value:.1e}, known p "
                  f"{result.known_payload_p_value:.1e}")  # fmt: skip
    level = f"p <= {args.threshold:g}"
    print(f"delta {args.delta}: identified at {level}: search {search}, known payload {known} of {len(outs)}")
    human = [
        wm.extract_candidates(wm.tokenize(t), [key], payloads=[payload])[0].known_payload_p_value or 1.0
        for t in human_passages(args.human)
    ]
    print(
        f"human passages ({len(human)}): known-payload p <= {args.threshold:g}: "
        f"{sum(p <= args.threshold for p in human)}; "
        f"< 0.01: {sum(p < 0.01 for p in human) / len(human):.3f}; "
        f"< 0.1: {sum(p < 0.1 for p in human) / len(human):.3f}"
    )


if __name__ == "__main__":
    main()
