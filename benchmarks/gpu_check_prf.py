"""GPU check of the SipHash-2-4 PRF: build with CUDA, prove CUDA == CPU native == torch reference, time both.

Runs from a bare copy of the repository (no safework install, no network): it puts packages/core/src on
sys.path itself and needs only torch, ninja and a compiler (nvcc for the CUDA part); the ops modules import
rich/platformdirs only optionally. Without CUDA it runs the CPU checks and reports CUDA as skipped.

Usage: python benchmarks/gpu_check_prf.py [--rows 16777216] [--batch 64] [--vocab 49152] [--repeats 5]
Prints one JSON summary as the last line (also written to $OUT/gpu_check_prf.json when $OUT is set) and
exits 1 if any output differs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packages" / "core" / "src"))
os.environ.setdefault("SAFEWORK_CACHE_DIR", tempfile.mkdtemp(prefix="safework-gpu-check-"))
os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 2))
os.environ["SAFEWORK_OPS"] = "native"

import torch  # noqa: E402

from safework.core.ops.builder import OpBuilder, cuda_build_available, use_builder  # noqa: E402
from safework.core.ops.prf import key_from_bytes, siphash24, siphash24_suffix  # noqa: E402
from safework.core.ops.prf_reference import siphash24_reference, siphash24_suffix_reference  # noqa: E402


def timed(fn: Callable[[], torch.Tensor], repeats: int, cuda: bool) -> tuple[float, torch.Tensor]:
    """Median seconds over ``repeats`` runs after one warm-up, and the last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1 << 24)
    parser.add_argument("--width", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=49152)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    summary: dict[str, object] = {
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu only",
        "cpu_threads": torch.get_num_threads(),
        "cache": os.environ["SAFEWORK_CACHE_DIR"],
    }
    with_cuda = cuda_build_available()
    summary["cuda_build"] = with_cuda
    if not with_cuda:
        summary["cuda_skipped"] = (
            "torch has no CUDA"
            if torch.version.cuda is None
            else "no GPU visible"
            if not torch.cuda.is_available()
            else "nvcc/CUDA_HOME not found"
        )
    builder = OpBuilder(with_cuda=with_cuda)
    start = time.perf_counter()
    build = builder.build("prf")
    summary["build_cold_s"] = round(time.perf_counter() - start, 2)
    # Warm: what a new process pays to load the cached build (torch import excluded).
    probe = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); import torch; "
        "from safework.core.ops.builder import OpBuilder; t = time.perf_counter(); "
        "OpBuilder(with_cuda=sys.argv[2] == '1').load('prf'); print(time.perf_counter() - t)"
    )
    src = str(ROOT / "packages" / "core" / "src")
    warm = subprocess.run(
        [sys.executable, "-c", probe, src, "1" if with_cuda else "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    summary["build_warm_s"] = round(float(warm.stdout.strip().splitlines()[-1]), 3)
    summary["library"] = str(build.library)
    summary["module_has_cuda"] = build.with_cuda

    gen = torch.Generator().manual_seed(1234)
    key = key_from_bytes(bytes.fromhex("000102030405060708090a0b0c0d0e0f"))
    words = torch.randint(-(2**63), 2**63 - 1, (args.rows, args.width), generator=gen)
    prefix = torch.randint(-(2**63), 2**63 - 1, (args.batch, args.width), generator=gen)
    checks: dict[str, bool] = {}
    timings: dict[str, float] = {}
    with use_builder(builder):
        t, cpu_rows = timed(lambda: siphash24(key, words), args.repeats, False)
        timings["rows_cpu_native_ms"] = t * 1e3
        t, cpu_suffix = timed(lambda: siphash24_suffix(key, prefix, args.vocab), args.repeats, False)
        timings["suffix_cpu_native_ms"] = t * 1e3
        # The torch reference on CPU over a slice ties everything to the scalar-verified ground truth.
        subset = min(args.rows, 1 << 20)
        checks["rows_cpu_native==reference_cpu"] = torch.equal(
            cpu_rows[:subset], siphash24_reference(key, words[:subset])
        )
        checks["suffix_cpu_native==reference_cpu"] = torch.equal(
            cpu_suffix[:8], siphash24_suffix_reference(key, prefix[:8], args.vocab)
        )
        if with_cuda:
            gkey, gwords, gprefix = key.cuda(), words.cuda(), prefix.cuda()
            t, gpu_rows = timed(lambda: siphash24(gkey, gwords), args.repeats, True)
            timings["rows_cuda_ms"] = t * 1e3
            t, gpu_suffix = timed(lambda: siphash24_suffix(gkey, gprefix, args.vocab), args.repeats, True)
            timings["suffix_cuda_ms"] = t * 1e3
            t, gpu_ref_rows = timed(lambda: siphash24_reference(gkey, gwords), 1, True)
            timings["rows_torch_reference_cuda_ms"] = t * 1e3
            gpu_ref_suffix = siphash24_suffix_reference(gkey, gprefix, args.vocab)
            checks["rows_cuda==cpu_native"] = torch.equal(gpu_rows.cpu(), cpu_rows)
            checks["rows_cuda==reference_cuda"] = torch.equal(gpu_rows, gpu_ref_rows)
            checks["suffix_cuda==cpu_native"] = torch.equal(gpu_suffix.cpu(), cpu_suffix)
            checks["suffix_cuda==reference_cuda"] = torch.equal(gpu_suffix, gpu_ref_suffix)
            odd = gwords[: 1 << 16, :1].contiguous()  # another width, and a non-multiple-of-block size
            checks["rows_w1_cuda==cpu_native"] = torch.equal(
                siphash24(gkey, odd).cpu(), siphash24(key, odd.cpu())
            )
            timings["rows_cuda_speedup_vs_cpu"] = timings["rows_cpu_native_ms"] / timings["rows_cuda_ms"]
            timings["suffix_cuda_speedup_vs_cpu"] = (
                timings["suffix_cpu_native_ms"] / timings["suffix_cuda_ms"]
            )
    rows_hashes, suffix_hashes = args.rows, args.batch * args.vocab
    rates = {
        "rows_cpu_native_Mhash_s": rows_hashes / timings["rows_cpu_native_ms"] / 1e3,
        "suffix_cpu_native_Mhash_s": suffix_hashes / timings["suffix_cpu_native_ms"] / 1e3,
    }
    if with_cuda:
        rates["rows_cuda_Mhash_s"] = rows_hashes / timings["rows_cuda_ms"] / 1e3
        rates["suffix_cuda_Mhash_s"] = suffix_hashes / timings["suffix_cuda_ms"] / 1e3
    summary.update(
        rows=f"{rows_hashes} x W={args.width}",
        suffix=f"B={args.batch} n={args.vocab}",
        checks=checks,
        all_equal=all(checks.values()),
        timings_ms={k: round(v, 3) for k, v in timings.items()},
        rates={k: round(v, 1) for k, v in rates.items()},
    )
    if not with_cuda:
        print(f"CUDA skipped: {summary['cuda_skipped']}", file=sys.stderr)
    line = json.dumps(summary)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_check_prf.json").write_text(line + "\n")
    print(line)
    return 0 if summary["all_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
