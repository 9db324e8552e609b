"""GPU check of the fused verifier scoring op: build with CUDA, prove CUDA == CPU native == reference, time.

Runs from a bare copy of the repository (no safework install, no network): it puts packages/core/src and
packages/verifiers/src on sys.path itself and needs only torch, ninja and a compiler (nvcc for the CUDA
part). It loads ``safework/verifiers/fused.py`` by file path, so the package ``__init__`` (which pulls in
the plugin registry and pluggy) never runs; the core ops modules import rich/platformdirs only optionally.
Without CUDA it runs the CPU checks and reports CUDA as skipped.

Checks: CUDA == CPU native bit for bit (probabilities, scores, rewards, advantages) for contiguous groups
(single-kernel and two-kernel plans) and shuffled ids; native == the unfused torch reference within the
documented tolerances (rtol 1e-5 / atol 1e-6, advantages atol 1e-5) on CPU and on CUDA.

Usage: python benchmarks/gpu_check_fused.py [--n 65536] [--verifiers 4] [--labels 6] [--group 8]
       [--repeats 20]
Prints one JSON summary as the last line (also written to $OUT/gpu_check_fused.json when $OUT is set) and
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
for _src in (ROOT / "packages" / "core" / "src", ROOT / "packages" / "verifiers" / "src"):
    sys.path.insert(0, str(_src))
os.environ.setdefault("SAFEWORK_CACHE_DIR", tempfile.mkdtemp(prefix="safework-gpu-check-"))
os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 2))
os.environ["SAFEWORK_OPS"] = "native"

import torch  # noqa: E402

from safework.core.ops.builder import OpBuilder, cuda_build_available, use_builder  # noqa: E402

RTOL, ATOL, ADV_ATOL = 1e-5, 1e-6, 1e-5
FIELDS = ("probabilities", "scores", "rewards", "advantages")


def load_fused() -> ModuleType:
    """``safework.verifiers.fused`` without executing ``safework/verifiers/__init__.py``."""
    name = "safework.verifiers.fused"
    path = ROOT / "packages" / "verifiers" / "src" / "safework" / "verifiers" / "fused.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


fused = load_fused()


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


def problem(n: int, v: int, lmax: int, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    counts = [lmax if i % 2 == 0 else 2 for i in range(v)]
    return {
        "logits": torch.randn((n, v, lmax), generator=gen) * 3,
        "label_counts": torch.tensor(counts, dtype=torch.int64),
        "score_maps": torch.rand((v, lmax), generator=gen),
        "weights": torch.rand((n, v), generator=gen),
        "format_rewards": (torch.rand(n, generator=gen) > 0.3).float(),
        "available": torch.rand((n, v), generator=gen) < 0.9,
        "format_weights": torch.rand(n, generator=gen),
    }


def run(
    impl: Callable[..., object], p: dict[str, torch.Tensor], groups: torch.Tensor | int, probs: bool
) -> object:
    return impl(
        p["logits"],
        p["label_counts"],
        p["score_maps"],
        p["weights"],
        p["format_rewards"],
        p["available"],
        groups,
        format_weights=p["format_weights"],
        return_probabilities=probs,
    )


def close(got: object, want: object) -> tuple[bool, float]:
    """Within the documented tolerances, and the largest absolute difference over all outputs."""
    ok, worst = True, 0.0
    for field in FIELDS:
        a, b = getattr(got, field), getattr(want, field)
        if a is None and b is None:
            continue
        a, b = a.cpu(), b.cpu()
        atol = ADV_ATOL if field == "advantages" else ATOL
        ok &= bool(torch.allclose(a, b, rtol=RTOL, atol=atol))
        if a.numel():
            worst = max(worst, float((a - b).abs().max()))
    return ok, worst


def identical(got: object, want: object) -> bool:
    return all(
        torch.equal(getattr(got, f).cpu(), getattr(want, f).cpu())
        for f in FIELDS
        if getattr(want, f) is not None
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=65536)
    parser.add_argument("--verifiers", type=int, default=4)
    parser.add_argument("--labels", type=int, default=6)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=20)
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
    build = builder.build("fused_score")
    summary["build_s"] = round(time.perf_counter() - start, 2)
    summary["module_has_cuda"] = build.with_cuda

    n, big_group = args.n, 512 if args.n % 512 == 0 else args.group
    p = problem(n, args.verifiers, args.labels, seed=1234)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(5))
    ids = (torch.arange(n) // args.group)[perm]  # same group sizes, shuffled ids in arbitrary order
    layouts: dict[str, torch.Tensor | int] = {
        "contiguous": args.group,
        "contiguous_big": big_group,
        "ids": ids,
    }
    checks: dict[str, bool] = {}
    max_abs: dict[str, float] = {}
    timings: dict[str, float] = {}
    with use_builder(builder):
        cpu = {k: run(fused.fused_score, p, g, True) for k, g in layouts.items()}
        for k, g in layouts.items():
            ok, worst = close(cpu[k], run(fused.fused_score_reference, p, g, True))
            checks[f"{k}_cpu_native~reference_cpu"], max_abs[f"{k}_cpu_vs_reference"] = ok, worst
        checks["cpu_group_size==ids_sorted"] = identical(
            cpu["contiguous"], run(fused.fused_score, p, torch.arange(n) // args.group, True)
        )
        timings["cpu_native_ms"] = timed(
            lambda: run(fused.fused_score, p, args.group, False), args.repeats, False
        )
        timings["cpu_reference_ms"] = timed(
            lambda: run(fused.fused_score_reference, p, args.group, False), max(3, args.repeats // 4), False
        )
        if with_cuda:
            gp = {k: t.cuda() for k, t in p.items()}
            glayouts = {k: g.cuda() if isinstance(g, torch.Tensor) else g for k, g in layouts.items()}
            for k, g in glayouts.items():
                gpu = run(fused.fused_score, gp, g, True)
                checks[f"{k}_cuda==cpu_native"] = identical(gpu, cpu[k])
                ok, worst = close(gpu, run(fused.fused_score_reference, gp, g, True))
                checks[f"{k}_cuda~reference_cuda"], max_abs[f"{k}_cuda_vs_reference"] = ok, worst
            gids = glayouts["ids"]
            timings["cuda_native_ms"] = timed(
                lambda: run(fused.fused_score, gp, args.group, False), args.repeats, True
            )
            timings["cuda_native_ids_ms"] = timed(
                lambda: run(fused.fused_score, gp, gids, False), args.repeats, True
            )
            timings["cuda_reference_ms"] = timed(
                lambda: run(fused.fused_score_reference, gp, args.group, False), args.repeats, True
            )
            timings["cuda_reference_ids_ms"] = timed(
                lambda: run(fused.fused_score_reference, gp, gids, False), args.repeats, True
            )
            small = {k: t[:1024].contiguous() if t.shape[0] == n else t for k, t in gp.items()}
            timings["cuda_native_n1024_ms"] = timed(
                lambda: run(fused.fused_score, small, args.group, False), args.repeats, True
            )
            timings["cuda_reference_n1024_ms"] = timed(
                lambda: run(fused.fused_score_reference, small, args.group, False), args.repeats, True
            )
            timings["cuda_speedup_vs_reference"] = timings["cuda_reference_ms"] / timings["cuda_native_ms"]
            timings["cuda_speedup_vs_cpu_native"] = timings["cpu_native_ms"] / timings["cuda_native_ms"]
        timings["cpu_speedup_vs_reference"] = timings["cpu_reference_ms"] / timings["cpu_native_ms"]
    summary.update(
        shape=f"N={n} V={args.verifiers} L={args.labels} groups of {args.group}",
        checks=checks,
        all_equal=all(checks.values()),
        max_abs_diff={k: float(f"{v:.3g}") for k, v in max_abs.items()},
        timings_ms={k: round(v, 4) for k, v in timings.items()},
    )
    if not with_cuda:
        print(f"CUDA skipped: {summary['cuda_skipped']}", file=sys.stderr)
    line = json.dumps(summary)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_check_fused.json").write_text(line + "\n")
    print(line)
    return 0 if summary["all_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
