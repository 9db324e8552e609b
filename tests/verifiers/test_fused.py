"""Fused verifier scoring: native (C++/OpenMP, CUDA) == unfused torch reference, spec semantics, edge cases.

Tolerances (documented in safework.verifiers.fused): native vs reference float32 outputs rtol=1e-5,
atol=1e-6; advantages atol=1e-5 (they divide reward differences by the group std); native CPU vs CUDA and
native int-group-size vs equivalent ids: bit for bit.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from safework.core.errors import ConfigError
from safework.core.ops.prf import OpInputError
from safework.verifiers.fused import (
    FusedScores,
    fused_score,
    fused_score_reference,
    group_advantages_reference,
    pack_score_maps,
)
from safework.verifiers.labels import KNOWLEDGE, SAFETY, VALUE

REPO = Path(__file__).resolve().parents[2]
CSRC = REPO / "csrc"
RTOL, ATOL, ADV_ATOL = 1e-5, 1e-6, 1e-5


@pytest.fixture
def native(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFEWORK_OPS", "native")


@dataclass
class Problem:
    logits: torch.Tensor
    label_counts: torch.Tensor
    score_maps: torch.Tensor
    weights: torch.Tensor
    format_rewards: torch.Tensor
    available: torch.Tensor
    format_weights: torch.Tensor

    def args(self) -> tuple[torch.Tensor, ...]:
        return (
            self.logits,
            self.label_counts,
            self.score_maps,
            self.weights,
            self.format_rewards,
            self.available,
        )


def make_problem(n: int, counts: list[int], seed: int, p_available: float = 0.8) -> Problem:
    gen = torch.Generator().manual_seed(seed)
    v, lmax = len(counts), max(counts)
    logits = torch.randn((n, v, lmax), generator=gen) * 3
    maps = torch.rand((v, lmax), generator=gen)
    return Problem(
        logits=logits,
        label_counts=torch.tensor(counts, dtype=torch.int64),
        score_maps=maps,
        weights=torch.rand((n, v), generator=gen),
        format_rewards=(torch.rand(n, generator=gen) > 0.3).float(),
        available=torch.rand((n, v), generator=gen) < p_available,
        format_weights=torch.rand(n, generator=gen),
    )


def assert_agree(got: FusedScores, want: FusedScores, groups: torch.Tensor | int) -> None:
    torch.testing.assert_close(got.scores, want.scores, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(got.rewards, want.rewards, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(got.advantages, want.advantages, rtol=RTOL, atol=ADV_ATOL)
    if want.probabilities is not None:
        assert got.probabilities is not None
        torch.testing.assert_close(got.probabilities, want.probabilities, rtol=RTOL, atol=ATOL)
    # Given the same rewards, the group stage agrees to float64 rounding.
    groups_exact = group_advantages_reference(got.rewards, groups)
    torch.testing.assert_close(got.advantages, groups_exact, rtol=1e-6, atol=1e-6)


def both(
    problem: Problem, groups: torch.Tensor | int, probabilities: bool = False
) -> tuple[FusedScores, FusedScores]:
    """The native op and the reference on the same inputs."""
    kw = {"format_weights": problem.format_weights, "return_probabilities": probabilities}
    got = fused_score(*problem.args(), groups, **kw)
    want = fused_score_reference(*problem.args(), groups, **kw)
    return got, want


# ------------------------------------------------------------------------------ native == reference


@pytest.mark.parametrize(
    ("n", "counts", "groups"),
    [
        (64, [6, 2, 2], 8),
        (96, [6, 2, 2, 3], 3),
        (40, [1, 4], 40),
        (33, [5], 1),
        (1024, [6, 2, 2, 2], 512),  # larger than the CUDA single-kernel group limit
    ],
)
def test_native_equals_reference_contiguous_groups(
    n: int, counts: list[int], groups: int, native: None
) -> None:
    got, want = both(make_problem(n, counts, seed=n), groups, probabilities=True)
    assert_agree(got, want, groups)


def test_native_equals_reference_shuffled_ids(native: None) -> None:
    gen = torch.Generator().manual_seed(7)
    ids = torch.randint(-5, 2**40, (50,), generator=gen)[torch.randint(0, 50, (500,), generator=gen)]
    got, want = both(make_problem(500, [6, 2, 3], seed=3), ids, probabilities=True)
    assert_agree(got, want, ids)
    assert torch.unique(ids).numel() > 10


def test_big_batch_agrees(native: None) -> None:
    """65536 rollouts x 4 verifiers x 6 labels, groups of 8: contiguous size, and the same ids shuffled."""
    problem = make_problem(65536, [6, 2, 2, 6], seed=11)
    got, want = both(problem, 8)
    assert_agree(got, want, 8)
    perm = torch.randperm(65536, generator=torch.Generator().manual_seed(1))
    shuffled = Problem(*(t[perm] if t.dim() and t.shape[0] == 65536 else t for t in vars(problem).values()))
    ids = (torch.arange(65536) // 8)[perm]
    got_ids, want_ids = both(shuffled, ids)
    assert_agree(got_ids, want_ids, ids)
    torch.testing.assert_close(got_ids.advantages, got.advantages[perm], rtol=RTOL, atol=ADV_ATOL)


def test_group_size_and_equivalent_ids_are_bit_identical(native: None) -> None:
    problem = make_problem(256, [6, 2], seed=5)
    by_size = fused_score(*problem.args(), 8, format_weights=problem.format_weights)
    ids = torch.arange(256) // 8 * 1000 - 77  # non-decreasing ids: no sort on the CPU path
    by_ids = fused_score(*problem.args(), ids, format_weights=problem.format_weights)
    assert torch.equal(by_size.rewards, by_ids.rewards)
    assert torch.equal(by_size.advantages, by_ids.advantages)


@pytest.mark.parametrize("groups", [8, 512, "ids"])
def test_vectorised_cpu_path_equals_the_per_item_cuda_code(groups: int | str, native: None) -> None:
    """CPU default (blocks of items, SIMD) vs fused::item_reward, the code the CUDA kernels run: same bits."""
    from safework.core.ops.builder import default_builder

    module = default_builder().load("fused_score")
    problem = make_problem(4096, [6, 2, 1, 5], seed=13)
    problem.logits[:7, 0, :3] = torch.tensor([-200.0, 0.0, -90.0])  # flushed, subnormal and normal exp
    ids = torch.randint(0, 300, (4096,), generator=torch.Generator().manual_seed(3))
    g, size = (ids, 0) if groups == "ids" else (torch.empty(0, dtype=torch.int64), int(groups))
    args = (*problem.args()[:5], problem.format_weights, problem.available, g, size, 1e-6, True, True)
    block = module.fused_score(*args)
    per_item = module.fused_score(*args, per_item=True)
    for got, want in zip(block, per_item, strict=True):
        assert torch.equal(got, want)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_equals_cpu_bit_for_bit(native: None) -> None:
    problem = make_problem(4096, [6, 2, 2, 3], seed=9)
    ids = torch.randint(0, 300, (4096,), generator=torch.Generator().manual_seed(2))
    for groups in (8, 512, ids):
        cpu = fused_score(
            *problem.args(), groups, format_weights=problem.format_weights, return_probabilities=True
        )
        cuda_args = [t.cuda() for t in problem.args()]
        g = groups.cuda() if isinstance(groups, torch.Tensor) else groups
        gpu = fused_score(
            *cuda_args, g, format_weights=problem.format_weights.cuda(), return_probabilities=True
        )
        for name in ("scores", "rewards", "advantages", "probabilities"):
            assert torch.equal(getattr(gpu, name).cpu(), getattr(cpu, name)), name


# ----------------------------------------------------------------------------- semantics by hand


def test_hand_computed_recipe_with_the_papers_label_maps(native: None) -> None:
    """Safety + value + knowledge verifiers with the spec §5 maps; expected values computed in Python."""
    maps, counts = pack_score_maps([SAFETY.score_vector(), VALUE.score_vector(), KNOWLEDGE.score_vector()])
    assert maps.shape == (3, 6) and counts.tolist() == [6, 2, 2]
    logits = torch.zeros((2, 3, 6))
    logits[0, 0, :6] = torch.tensor([0.0, 2.0, 1.0, -1.0, 0.5, -3.0])
    logits[0, 1, :2] = torch.tensor([1.5, -0.5])
    logits[0, 2, 2:] = 1e4  # padding: must be ignored
    logits[1] = logits[0] * 0.5
    weights = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])  # a "safety" item and a "value+knowledge" one
    fmt = torch.tensor([1.0, 0.0])
    available = torch.tensor([[True, True, True], [True, True, False]])  # knowledge RM not loaded for item 1
    for impl in (fused_score, fused_score_reference):
        out = impl(
            logits, counts, maps, weights, fmt, available, torch.tensor([0, 0]), return_probabilities=True
        )

        def softmax(xs: list[float]) -> list[float]:
            m = max(xs)
            e = [math.exp(x - m) for x in xs]
            return [x / sum(e) for x in e]

        p_safety = softmax(logits[0, 0].tolist())
        s_safety = SAFETY.graded(p_safety)
        p_value = softmax([0.75, -0.25])
        s_value = VALUE.graded(p_value)
        r0 = 1.0 + s_safety
        r1 = 0.0 + s_value + 1.0  # unavailable knowledge verifier contributes 1.0 * weight
        mean, std = (r0 + r1) / 2, abs(r0 - r1) / math.sqrt(2)  # sample std of two values
        assert out.probabilities is not None
        assert out.probabilities[0, 0].tolist() == pytest.approx(p_safety, rel=1e-5)
        assert out.probabilities[0, 2].tolist() == pytest.approx([0.5, 0.5, 0, 0, 0, 0], rel=1e-5)
        assert out.probabilities[1, 2].tolist() == [0.0] * 6
        assert out.scores[1, 2].item() == 1.0
        assert out.rewards.tolist() == pytest.approx([r0, r1], rel=1e-5)
        want_adv = [(r0 - mean) / (std + 1e-6), (r1 - mean) / (std + 1e-6)]
        assert out.advantages.tolist() == pytest.approx(want_adv, rel=1e-5)


def test_sample_std_by_default_population_on_request(native: None) -> None:
    problem = make_problem(16, [3, 2], seed=1)
    for unbiased in (True, False):
        out = fused_score(
            *problem.args(), 16, format_weights=problem.format_weights, unbiased=unbiased, eps=0.0
        )
        r = out.rewards.double()
        want = (r - r.mean()) / r.std(unbiased=unbiased)
        torch.testing.assert_close(out.advantages.double(), want, rtol=1e-6, atol=1e-6)


def test_single_member_and_equal_reward_groups_get_zero(native: None) -> None:
    problem = make_problem(12, [4, 2], seed=2)
    problem.weights.zero_()  # reward = format only
    problem.format_weights.fill_(1.0)
    problem.format_rewards.copy_(torch.tensor([1.0] * 4 + [0.0, 1.0, 0.0, 1.0] + [0.3] * 3 + [0.9]))
    ids = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 3])  # all-equal group, mixed group, equal, single
    for eps in (1e-6, 0.0):
        for impl in (fused_score, fused_score_reference):
            out = impl(*problem.args(), ids, format_weights=problem.format_weights, eps=eps)
            adv = out.advantages
            assert not torch.isnan(adv).any()
            assert adv[:4].tolist() == [0.0] * 4 and adv[8:].tolist() == [0.0] * 4
            assert adv[4:8].tolist() == pytest.approx([-0.866025, 0.866025, -0.866025, 0.866025], rel=1e-5)


def test_label_count_one_is_certain(native: None) -> None:
    problem = make_problem(10, [1, 3], seed=4, p_available=1.0)
    out = fused_score(*problem.args(), 5, return_probabilities=True)
    assert out.probabilities is not None
    assert out.probabilities[:, 0].tolist() == [[1.0, 0.0, 0.0]] * 10
    assert torch.equal(out.scores[:, 0], problem.score_maps[0, 0].expand(10))


def test_unavailable_verifiers_never_read_their_logits(native: None) -> None:
    problem = make_problem(8, [6, 2], seed=6, p_available=0.5)
    problem.logits[~problem.available] = float("nan")
    for impl in (fused_score, fused_score_reference):
        out = impl(*problem.args(), 4, return_probabilities=True)
        assert torch.isfinite(out.rewards).all() and torch.isfinite(out.advantages).all()
        assert (out.scores[~problem.available] == 1.0).all()
    assert problem.available.any() and (~problem.available).any()


def test_large_logits_are_stable(native: None) -> None:
    problem = make_problem(32, [6, 2], seed=8, p_available=1.0)
    problem.logits.mul_(1e3).add_(5e4)
    got, want = both(problem, 8, probabilities=True)
    assert got.probabilities is not None and torch.isfinite(got.probabilities).all()
    assert_agree(got, want, 8)


def test_empty_batch(native: None) -> None:
    problem = make_problem(0, [6, 2], seed=0)
    for groups in (4, torch.empty(0, dtype=torch.int64)):
        out = fused_score(*problem.args(), groups, return_probabilities=True)
        assert out.scores.shape == (0, 2) and out.rewards.shape == (0,) and out.advantages.shape == (0,)
        assert out.probabilities is not None and out.probabilities.shape == (0, 2, 6)


def test_reference_mode_runs_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFEWORK_OPS", "reference")
    problem = make_problem(24, [6, 2], seed=12)
    out = fused_score(*problem.args(), 8, format_weights=problem.format_weights)
    want = fused_score_reference(*problem.args(), 8, format_weights=problem.format_weights)
    assert torch.equal(out.rewards, want.rewards) and torch.equal(out.advantages, want.advantages)


def test_packs_uneven_score_maps() -> None:
    maps, counts = pack_score_maps([[0.1, 1.0, 1.0], [1.0]])
    assert maps.flatten().tolist() == pytest.approx([0.1, 1.0, 1.0, 1.0, 0.0, 0.0])
    assert counts.tolist() == [3, 1]
    with pytest.raises(OpInputError, match="at least one label"):
        pack_score_maps([[0.5], []])


# -------------------------------------------------------------------------------------- validation

_P = make_problem(4, [3, 2], seed=0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"logits": _P.logits.double()}, "logits must be torch.float32"),
        ({"logits": _P.logits[0]}, "3-D tensor"),
        ({"label_counts": torch.tensor([3, 4])}, r"label_counts must lie in \[1, 3\]"),
        ({"label_counts": torch.tensor([0, 2])}, r"label_counts must lie in \[1, 3\]"),
        ({"label_counts": torch.tensor([3.0, 2.0])}, "label_counts must be torch.int64"),
        ({"score_maps": _P.score_maps[:, :2]}, r"score_maps must have shape \(2, 3\)"),
        ({"weights": _P.weights.T}, r"weights must have shape \(4, 2\)"),
        ({"format_rewards": [1.0] * 4}, "format_rewards must be a torch tensor"),
        ({"available": _P.available.float()}, "available must be torch.bool or torch.uint8"),
        ({"groups": 3}, "groups=3 must be a positive group size dividing N=4"),
        ({"groups": 0}, "positive group size"),
        ({"groups": torch.zeros(3, dtype=torch.int64)}, r"groups must have shape \(4,\)"),
        ({"groups": "abc"}, "groups must be an int64 id tensor"),
        ({"eps": -1.0}, "eps must be a finite float >= 0"),
        ({"format_weights": torch.ones(3)}, r"format_weights must have shape \(4,\)"),
        ({"format_weights": "1"}, "format_weights must be a float or a tensor"),
    ],
)
def test_rejects_bad_input(change: dict[str, object], message: str) -> None:
    kwargs: dict[str, object] = {
        "logits": _P.logits,
        "label_counts": _P.label_counts,
        "score_maps": _P.score_maps,
        "weights": _P.weights,
        "format_rewards": _P.format_rewards,
        "available": _P.available,
        "groups": 2,
        **change,
    }
    for impl in (fused_score, fused_score_reference):
        with pytest.raises(OpInputError, match=message):
            impl(**kwargs)


def test_input_errors_are_config_and_value_errors() -> None:
    with pytest.raises(ConfigError):
        fused_score(*_P.args(), 3)
    with pytest.raises(ValueError):
        fused_score(*_P.args(), 3)


# ---------------------------------------------------------------------------- native build hygiene


def _includes(path: Path) -> list[str]:
    return re.findall(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', path.read_text(), flags=re.MULTILINE)


def test_cuda_source_depends_only_on_cuda_headers_and_stdint() -> None:
    seen: set[str] = set()
    pending = [CSRC / "verifiers" / "fused_score_cuda.cu"]
    while pending:
        current = pending.pop()
        for inc in _includes(current):
            local = current.parent / inc
            if local.is_file():
                if inc not in seen:
                    seen.add(inc)
                    pending.append(local)
            else:
                assert inc in {"cuda_runtime.h", "stdint.h"}, f"{current.name} includes {inc}"
    assert seen == {"fused_math.h", "fused_score.h", "../core/rounded.h"}


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_cuda_source_compiles_with_nvcc_without_fma_contraction(tmp_path: Path) -> None:
    nvcc = shutil.which("nvcc")
    assert nvcc is not None
    source = CSRC / "verifiers" / "fused_score_cuda.cu"
    obj, ptx = tmp_path / "fused_score_cuda.o", tmp_path / "fused_score_cuda.ptx"
    for flag, out in (("-c", obj), ("-ptx", ptx)):
        proc = subprocess.run(
            [nvcc, "-std=c++17", "-arch=sm_80", flag, str(source), "-o", str(out)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
    assert obj.stat().st_size > 0
    text = ptx.read_text()
    # Float arithmetic must stay separate mul/add (what the CPU path does), or CUDA != CPU bit for bit.
    assert "mul.rn.f32" in text and "add.rn.f64" in text
    assert not re.search(r"\bfma\.rn\.f(32|64)\b", text)


def test_gpu_check_script_runs_without_optional_libraries(tmp_path: Path) -> None:
    """benchmarks/gpu_check_fused.py imports only torch + the ops modules (the GPU box has no pluggy etc.)."""
    from safework.core.paths import cache_root

    blocker = (
        "import sys, runpy\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'pluggy', 'rich', 'click', 'platformdirs'}:\n"
        "            raise ImportError(f'blocked optional library {name}')\n"
        "        return None\n"
        "sys.meta_path.insert(0, Block())\n"
        "sys.argv = [sys.argv[1], '--n', '4096', '--repeats', '1']\n"
        "code = 0\n"
        "try:\n"
        "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "assert 'safework.verifiers.registry' not in sys.modules and 'pluggy' not in sys.modules\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "SAFEWORK_CACHE_DIR": str(cache_root()), "OUT": str(tmp_path)}
    script = REPO / "benchmarks" / "gpu_check_fused.py"
    proc = subprocess.run(
        [sys.executable, "-c", blocker, str(script)], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["all_equal"] is True and summary["checks"]
    assert json.loads((tmp_path / "gpu_check_fused.json").read_text()) == summary
