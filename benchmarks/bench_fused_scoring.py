"""Fused verifier scoring: native C++/OpenMP kernel vs the unfused torch reference, measured in one run.

Usage: .venv/bin/python benchmarks/bench_fused_scoring.py [--sizes 1024 65536] [--verifiers 4] [--labels 6]
       [--group 8] [--repeats 15] [--threads N] [--json]
For each N: median milliseconds of ``fused_score`` (SAFEWORK_OPS=native) and ``fused_score_reference`` over
--repeats runs (after a warm-up), with contiguous groups of --group items and with the same groups as
shuffled ids, and the reference/native ratio. Outputs are compared (documented tolerances) before timing.
Both timings include the same Python-side input validation; CUDA figures come from gpu_check_fused.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _src in (ROOT / "packages" / "core" / "src", ROOT / "packages" / "verifiers" / "src"):
    sys.path.insert(0, str(_src))
os.environ["SAFEWORK_OPS"] = "native"  # never silently time the reference as "native"

import torch  # noqa: E402

from safework.core.ops.builder import default_builder  # noqa: E402
from safework.verifiers.fused import FusedScores, fused_score, fused_score_reference  # noqa: E402


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (allocator, OpenMP pool)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def inputs(n: int, v: int, lmax: int, seed: int) -> dict[str, torch.Tensor]:
    """A batch like an RL step's: safety-sized and binary label sets, 90% of verifiers loaded."""
    gen = torch.Generator().manual_seed(seed)
    return {
        "logits": torch.randn((n, v, lmax), generator=gen) * 3,
        "label_counts": torch.tensor([lmax if i % 2 == 0 else 2 for i in range(v)], dtype=torch.int64),
        "score_maps": torch.rand((v, lmax), generator=gen),
        "weights": torch.rand((n, v), generator=gen),
        "format_rewards": (torch.rand(n, generator=gen) > 0.3).float(),
        "available": torch.rand((n, v), generator=gen) < 0.9,
    }


def call(
    impl: Callable[..., FusedScores], x: dict[str, torch.Tensor], groups: torch.Tensor | int
) -> FusedScores:
    return impl(
        x["logits"],
        x["label_counts"],
        x["score_maps"],
        x["weights"],
        x["format_rewards"],
        x["available"],
        groups,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 65536])
    parser.add_argument("--verifiers", type=int, default=4)
    parser.add_argument("--labels", type=int, default=6)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0, help="torch/OpenMP threads (0: torch default)")
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)  # the native kernel uses torch's thread count too
    start = time.perf_counter()
    default_builder().load("fused_score")
    load_s = time.perf_counter() - start

    rows = []
    for n in args.sizes:
        x = inputs(n, args.verifiers, args.labels, seed=n)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
        layouts: dict[str, torch.Tensor | int] = {
            "contiguous": args.group,
            "shuffled_ids": (torch.arange(n) // args.group)[perm],
        }
        for layout, groups in layouts.items():
            got, want = call(fused_score, x, groups), call(fused_score_reference, x, groups)
            torch.testing.assert_close(got.rewards, want.rewards, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(got.advantages, want.advantages, rtol=1e-5, atol=1e-5)
            native = median_ms(lambda g=groups, x=x: call(fused_score, x, g), args.repeats)  # type: ignore[misc]
            reference = median_ms(
                lambda g=groups, x=x: call(fused_score_reference, x, g),  # type: ignore[misc]
                args.repeats,
            )
            rows.append(
                {
                    "n": n,
                    "layout": layout,
                    "native_ms": round(native, 3),
                    "reference_ms": round(reference, 3),
                    "speedup": round(reference / native, 2),
                    "native_Mitems_s": round(n / native / 1e3, 2),
                }
            )
    summary = {
        "shape": f"V={args.verifiers} L={args.labels} groups of {args.group}",
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "load_s": round(load_s, 3),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "rows": rows,
    }
    if not args.json:
        print(
            f"fused verifier scoring, {summary['shape']}, {summary['threads']} threads "
            f"(median of {args.repeats})"
        )
        print(f"{'N':>8} {'layout':>13} {'native ms':>10} {'reference ms':>13} {'speedup':>8}")
        for r in rows:
            print(
                f"{r['n']:>8} {r['layout']:>13} {r['native_ms']:>10.3f} {r['reference_ms']:>13.3f} "
                f"{r['speedup']:>7.1f}x"
            )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
