"""Speed of the CredID green-list kernels: native C++/OpenMP vs the pure-torch reference, measured in one run.

Usage: .venv/bin/python benchmarks/bench_credid_kernels.py [--repeats 5] [--threads N] [--json]
Cases: the embedding hot path, ``green_bias`` on B=8 rows x n=49,152 vocabulary with K=512 tops (one
generation step of a batch), and the extraction hot path, ``green_table`` (T=200 tokens x P=50 candidates,
K=256) followed by ``candidate_counts`` (J=4 slots, C=256 candidates). Outputs are compared bit for bit
before anything is timed; prints medians of --repeats runs and native/reference ratios.
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
for _src in ("core", "watermark"):
    sys.path.insert(0, str(ROOT / "packages" / _src / "src"))

import torch  # noqa: E402
from benchlib import machine_label, median_seconds  # noqa: E402

from safework.core.ops.builder import default_builder  # noqa: E402
from safework.core.ops.prf import key_from_bytes  # noqa: E402
from safework.watermark import kernels  # noqa: E402
from safework.watermark import kernels_reference as ref  # noqa: E402


def problem(rows: int, k: int, vocab: int, width: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random prefixes and a peaked top-K distribution (distinct ids, float32 masses, rest = 1 - sum)."""
    ids = torch.rand(rows, vocab, generator=gen).argsort(dim=1)[:, :k].contiguous()
    probs = torch.softmax(torch.randn(rows, k, generator=gen) * 2, dim=1) * 0.9
    return {
        "prefix": torch.randint(-(2**63), 2**63 - 1, (rows, width), generator=gen),
        "ids": ids,
        "probs": probs,
        "rest": (1.0 - probs.double().sum(1)).clamp(min=0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch/OpenMP threads (0: torch default)")
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)  # the native kernels use torch's thread count too
    os.environ["SAFEWORK_OPS"] = "native"  # never silently time the reference as "native"
    start = time.perf_counter()
    default_builder().load("credid")
    load_seconds = time.perf_counter() - start

    gen = torch.Generator().manual_seed(0)
    key = key_from_bytes(bytes(range(16)))
    b, n, tau, delta = 8, 49152, 0.5, 2.0
    gb = problem(b, 512, n, 3, gen)
    logits = torch.randn(b, n, generator=gen)
    t, p, j, c = 200, 50, 4, 256
    ex = problem(t, 256, n, 2, gen)
    tokens = torch.where(
        torch.rand(t, generator=gen) < 0.5, ex["ids"][:, 0], torch.randint(0, n, (t,), generator=gen)
    )
    slots = torch.randint(-1, j, (t,), generator=gen)

    def bias_native() -> torch.Tensor:
        out = logits.clone()
        kernels.green_bias(key, gb["prefix"], gb["ids"], gb["probs"], gb["rest"], n, tau, out, delta)
        return out

    def bias_reference() -> torch.Tensor:
        out = logits.clone()
        ref.green_bias_reference(key, gb["prefix"], gb["ids"], gb["probs"], gb["rest"], n, tau, out, delta)
        return out

    def extract(
        table_fn: Callable[..., torch.Tensor], counts_fn: Callable[..., torch.Tensor]
    ) -> torch.Tensor:
        green = table_fn(key, ex["prefix"], tokens, ex["ids"], ex["probs"], ex["rest"], p, tau)
        return counts_fn(key, ex["prefix"], green, slots, j, c)

    cases: dict[str, tuple[Callable[[], torch.Tensor], Callable[[], torch.Tensor]]] = {
        f"green_bias B={b} n={n} K=512": (bias_native, bias_reference),
        f"green_table+candidate_counts T={t} P={p} K=256 J={j} C={c}": (
            lambda: extract(kernels.green_table, kernels.candidate_counts),
            lambda: extract(ref.green_table_reference, ref.candidate_counts_reference),
        ),
    }
    results = {}
    for name, (native_fn, reference_fn) in cases.items():
        assert torch.equal(native_fn(), reference_fn()), name
        native_s = median_seconds(native_fn, args.repeats)
        reference_s = median_seconds(reference_fn, args.repeats)
        results[name] = {
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
                f"{name:<56} native {r['native_ms']:9.2f} ms | torch reference {r['reference_ms']:9.1f} ms"
                f" | native/reference x{r['speedup']:.1f}"
            )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
