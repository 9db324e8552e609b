"""GPU check of the CredID green-list kernels: build with CUDA, prove CUDA == CPU native == reference, time.

Runs from a bare copy of the repository (no safework install, no network): it puts packages/core/src and
packages/watermark/src on sys.path itself and needs only torch, ninja and a compiler (nvcc for the CUDA
part). It loads ``safework/watermark/kernels*.py`` by file path, so the package ``__init__`` never runs.
Without CUDA it runs the CPU checks and reports CUDA as skipped.

Checks, bit for bit: green_mask and green_bias (B x n=49,152, K=512), green_table (T x P, K=256, tokens
inside and outside the tops), candidate_counts (J=4, C=4096), and green_from_hashes on hash ties (both
native routines); CUDA vs CPU native, and CPU native vs the torch reference on a slice.

Usage: python benchmarks/gpu_check_credid.py [--batch 8] [--tokens 2000] [--candidates 200] [--repeats 10]
Prints one JSON summary as the last line (also written to $OUT/gpu_check_credid.json when $OUT is set) and
exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
for _src in ("core", "watermark"):
    sys.path.insert(0, str(ROOT / "packages" / _src / "src"))
os.environ.setdefault("SAFEWORK_CACHE_DIR", tempfile.mkdtemp(prefix="safework-gpu-check-"))
os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 2))
os.environ["SAFEWORK_OPS"] = "native"

import torch  # noqa: E402

from safework.core.ops.builder import OpBuilder, cuda_build_available, use_builder  # noqa: E402
from safework.core.ops.prf import key_from_bytes  # noqa: E402


def load(name: str) -> ModuleType:
    """``safework.watermark.<name>`` without executing ``safework/watermark/__init__.py``."""
    full = f"safework.watermark.{name}"
    path = ROOT / "packages" / "watermark" / "src" / "safework" / "watermark" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(full, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[full] = module
    spec.loader.exec_module(module)
    return module


ref = load("kernels_reference")
kernels = load("kernels")


def timed(fn: Callable[[], object], repeats: int, cuda: bool) -> float:
    """Median milliseconds over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def tops(rows: int, k: int, vocab: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    ids = torch.rand(rows, vocab, generator=gen).argsort(dim=1)[:, :k].contiguous()
    probs = torch.softmax(torch.randn(rows, k, generator=gen) * 2, dim=1) * 0.9
    probs[:, -k // 10 :] = 0.0  # padding entries
    return ids, probs, (1.0 - probs.double().sum(1)).clamp(min=0.0)


def tie_case(gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Hashes from a tiny pool (ties decided by id) and masses whose float64 sum depends on the order."""
    rows, k, m = 64, 8, 100
    pool = torch.tensor([0, 5, 5, 9, -(2**63), -1, -5])
    masses = torch.tensor([0.5, 0.25, 2.0**-54, 3 * 2.0**-55, 2.0**-55, 0.125])
    perm = torch.stack([torch.randperm(60, generator=gen) for _ in range(rows)])
    x_top = pool[torch.randint(0, len(pool), (rows, k), generator=gen)]
    x_query = pool[torch.randint(0, len(pool), (rows, m), generator=gen)]
    query_ids = perm.gather(1, torch.randint(k, 60, (rows, m), generator=gen))
    query_ids[:, :k], x_query[:, :k] = perm[:, :k], x_top
    probs = masses[torch.randint(0, len(masses), (rows, k), generator=gen)]
    rest = torch.rand(rows, generator=gen, dtype=torch.float64)
    return x_top, perm[:, :k].contiguous(), probs, rest, x_query, query_ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=49152)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    summary: dict[str, object] = {
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu only",
        "cpu_threads": torch.get_num_threads(),
    }
    with_cuda = cuda_build_available()
    summary["cuda_build"] = with_cuda
    builder = OpBuilder(with_cuda=with_cuda)
    start = time.perf_counter()
    build = builder.build("credid")
    summary["build_cold_s"] = round(time.perf_counter() - start, 2)
    summary["module_has_cuda"] = build.with_cuda

    gen = torch.Generator().manual_seed(4321)
    key = key_from_bytes(bytes(range(16)))
    b, n, t, p, tau = args.batch, args.vocab, args.tokens, args.candidates, 0.5
    prefix = torch.randint(-(2**63), 2**63 - 1, (b, 3), generator=gen)
    ids, probs, rest = tops(b, 512, n, gen)
    logits = torch.randn(b, n, generator=gen)
    context = torch.randint(-(2**63), 2**63 - 1, (t, 2), generator=gen)
    tids, tprobs, trest = tops(t, 256, n, gen)
    inside = torch.rand(t, generator=gen) < 0.5
    tokens = torch.where(inside, tids[:, 0], torch.randint(0, n, (t,), generator=gen))
    slots = torch.randint(-1, 4, (t,), generator=gen)
    ties = tie_case(gen)

    def run(dev: str) -> dict[str, Callable[[], torch.Tensor]]:
        mv = lambda x: x.to(dev)  # noqa: E731
        k, pr, i, pb, r = mv(key), mv(prefix), mv(ids), mv(probs), mv(rest)
        ctx, tk, ti, tp, tr = mv(context), mv(tokens), mv(tids), mv(tprobs), mv(trest)
        lg, sl, tc = mv(logits), mv(slots), [mv(x) for x in ties]

        def bias() -> torch.Tensor:
            out = lg.clone()
            kernels.green_bias(k, pr, i, pb, r, n, tau, out, 1.5)
            return out

        table = lambda: kernels.green_table(k, ctx, tk, ti, tp, tr, p, tau)  # noqa: E731
        green = table()
        return {
            "green_mask": lambda: kernels.green_mask(k, pr, i, pb, r, n, tau),
            "green_bias": bias,
            "green_table": table,
            "candidate_counts": lambda: kernels.candidate_counts(k, ctx, green, sl, 4, 4096),
            "ties_table": lambda: kernels.green_from_hashes(*tc, 0.7, per_query=False),
            "ties_per_query": lambda: kernels.green_from_hashes(*tc, 0.7, per_query=True),
        }

    checks: dict[str, bool] = {}
    timings: dict[str, float] = {}
    with use_builder(builder):
        cpu = run("cpu")
        cpu_out = {name: fn() for name, fn in cpu.items()}
        for name in ("green_mask", "green_bias", "green_table", "candidate_counts"):
            timings[f"{name}_cpu_ms"] = timed(cpu[name], max(1, args.repeats // 5), False)
        sl = slice(0, min(t, 50))
        checks["cpu==reference:green_mask"] = torch.equal(
            cpu_out["green_mask"], ref.green_mask_reference(key, prefix, ids, probs, rest, n, tau)
        )
        checks["cpu==reference:green_table"] = torch.equal(
            cpu_out["green_table"][sl],
            ref.green_table_reference(key, context[sl], tokens[sl], tids[sl], tprobs[sl], trest[sl], p, tau),
        )
        checks["cpu==reference:ties"] = torch.equal(
            cpu_out["ties_table"], ref.green_from_hashes_reference(*ties, 0.7)
        ) and torch.equal(cpu_out["ties_per_query"], cpu_out["ties_table"])
        if with_cuda:
            gpu = run("cuda")
            for name, fn in gpu.items():
                checks[f"cuda==cpu:{name}"] = torch.equal(fn().cpu(), cpu_out[name])
            for name in ("green_mask", "green_bias", "green_table", "candidate_counts"):
                timings[f"{name}_cuda_ms"] = timed(gpu[name], args.repeats, True)
        else:
            summary["cuda_skipped"] = "no CUDA build (torch CUDA, a GPU or nvcc missing)"
    summary.update(
        shapes=f"vocab B={b} n={n} K=512; table T={t} P={p} K=256; counts J=4 C=4096",
        checks=checks,
        all_equal=all(checks.values()),
        timings_ms={k: round(v, 3) for k, v in timings.items()},
    )
    line = json.dumps(summary)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_check_credid.json").write_text(line + "\n")
    print(line)
    return 0 if summary["all_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
