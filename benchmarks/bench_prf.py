"""Throughput of the SipHash-2-4 PRF: native C++/OpenMP vs the pure-torch reference, measured in one run.

Usage: .venv/bin/python benchmarks/bench_prf.py [--rows 1048576] [--repeats 5] [--threads N] [--json]
Prints hashes/s (median of --repeats) for both implementations and the ratio, for the row op (W=3 words per
row, the watermark's context+payload+candidate shape) and for the fused suffix op at B=8, n=49152 (a batch
of 8 rows against a 49k vocabulary). Outputs are compared bit for bit before anything is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packages" / "core" / "src"))

import torch  # noqa: E402
from benchlib import machine_label, median_seconds  # noqa: E402

from safework.core.ops.builder import default_builder  # noqa: E402
from safework.core.ops.prf import key_from_bytes, siphash24, siphash24_suffix  # noqa: E402
from safework.core.ops.prf_reference import siphash24_reference, siphash24_suffix_reference  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1 << 20)
    parser.add_argument("--width", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=49152)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch/OpenMP threads (0: torch default)")
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)  # the native kernels use torch's thread count too
    os.environ["SAFEWORK_OPS"] = "native"  # never silently time the reference as "native"
    start = time.perf_counter()
    default_builder().load("prf")
    load_seconds = time.perf_counter() - start

    gen = torch.Generator().manual_seed(0)
    key = key_from_bytes(bytes(range(16)))
    words = torch.randint(-(2**63), 2**63 - 1, (args.rows, args.width), generator=gen)
    prefix = torch.randint(-(2**63), 2**63 - 1, (args.batch, args.width), generator=gen)
    assert torch.equal(siphash24(key, words), siphash24_reference(key, words))
    assert torch.equal(
        siphash24_suffix(key, prefix, args.vocab), siphash24_suffix_reference(key, prefix, args.vocab)
    )

    results = {}
    cases: dict[str, tuple[int, Callable[[], object], Callable[[], object]]] = {
        f"rows N={args.rows} W={args.width}": (
            args.rows,
            lambda: siphash24(key, words),
            lambda: siphash24_reference(key, words),
        ),
        f"suffix B={args.batch} n={args.vocab} W={args.width}+1": (
            args.batch * args.vocab,
            lambda: siphash24_suffix(key, prefix, args.vocab),
            lambda: siphash24_suffix_reference(key, prefix, args.vocab),
        ),
    }
    for name, (count, native_fn, reference_fn) in cases.items():
        native_s = median_seconds(native_fn, args.repeats)
        reference_s = median_seconds(reference_fn, args.repeats)
        results[name] = {
            "hashes": count,
            "native_hashes_per_s": count / native_s,
            "reference_hashes_per_s": count / reference_s,
            "native_ms": native_s * 1e3,
            "reference_ms": reference_s * 1e3,
            "speedup": reference_s / native_s,
        }
    summary = {
        "machine": machine_label(torch.get_num_threads()),
        "torch": torch.__version__,
        "native_load_seconds": load_seconds,
        "repeats": args.repeats,
        "results": results,
    }
    if not args.json:
        print(f"{summary['machine']}; torch {torch.__version__}; median of {args.repeats}")
        for name, r in results.items():
            print(
                f"{name:<32} native {r['native_hashes_per_s'] / 1e6:8.1f} M hashes/s"
                f" ({r['native_ms']:.2f} ms)"
                f" | torch reference {r['reference_hashes_per_s'] / 1e6:7.2f} M hashes/s"
                f" ({r['reference_ms']:.1f} ms) | native/reference x{r['speedup']:.1f}"
            )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
