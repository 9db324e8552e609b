"""The ``vllm`` rollout backend against a real vLLM (CPU) server in its own venv, driven from this venv.

Starting vLLM costs tens of seconds on CPU, so the module shares one server. Its policy is a tiny random-init
Llama on SmolLM2's real tokenizer (vLLM's CPU attention needs head size >= 32, so hidden 128), biased
towards the end-of-turn token so that rollouts end both ways: on the stop token and at max_new_tokens.
"""

from __future__ import annotations

import copy
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from safework.core.errors import ConfigError
from safework.core.models.generation import prompt_ids, stop_ids
from safework.core.models.loader import LoadedModel
from safework.rl.rollout.base import PromptItem, Rollout, RolloutSettings
from safework.rl.rollout.parity import PROBE_TOLERANCE
from safework.rl.rollout.vllm import VLLMRolloutEngine, vllm_python

ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"


def _skip_reason() -> str | None:
    if not VLLM_PYTHON.is_file():
        return f"{VLLM_PYTHON} does not exist: run `make test-vllm` to build the vLLM venv"
    done = subprocess.run(
        [str(VLLM_PYTHON), "-c", "import vllm"], capture_output=True, text=True, timeout=300, cwd="/"
    )
    if done.returncode:
        return f"{VLLM_PYTHON} cannot import vllm ({done.stderr.strip()[-300:]}): run `make test-vllm`"
    return None


_REASON = _skip_reason()
if _REASON is not None:
    pytest.skip(_REASON, allow_module_level=True)

pytestmark = pytest.mark.slow

ITEMS = [
    PromptItem("What is 2+2?", "x"),
    PromptItem("Name a colour.", "x"),
    PromptItem("Is it safe to swim after eating?", "x"),
]
SETTINGS = RolloutSettings(samples=4, max_new_tokens=16)


def eos_prone(loaded: LoadedModel, eos: int, bias: float = 0.8) -> None:
    """Give every position a shared embedding direction and tilt the (tied) end-of-turn row along it: a
    random-init model otherwise stops with probability ~1/49152 per token, so no rollout would stop."""
    with torch.no_grad():
        embed = loaded.model.get_input_embeddings().weight
        direction = torch.randn(embed.shape[1], generator=torch.Generator().manual_seed(0))
        direction /= direction.norm()
        embed += direction
        embed[eos] += bias * direction


def noisy_copy(model: Any, seed: int, scale: float = 0.05) -> Any:
    """A copy of ``model`` with seeded Gaussian noise on every weight (a stand-in for a training update)."""
    other = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * scale)
    return other


@pytest.fixture(scope="module")
def policy() -> LoadedModel:
    from safework.core.models import load_tokenizer, tiny_loaded

    tokenizer = load_tokenizer()
    loaded = tiny_loaded(tokenizer, hidden=128, seed=0)
    eos_prone(loaded, int(tokenizer.eos_token_id))
    return loaded


@pytest.fixture(scope="module")
def engine(policy: LoadedModel) -> Iterator[VLLMRolloutEngine]:
    with VLLMRolloutEngine(policy, python=str(VLLM_PYTHON), max_model_len=512) as started:
        yield started


def trainer_scores(model: Any, rollouts: list[Rollout]) -> list[list[float]]:
    """The trainer-side log-probs of each rollout's response ids (what the update's ``old_logp`` uses)."""
    from safework.core.models.logprobs import token_logprobs

    rows = [(list(r.prompt_ids), list(r.response_ids)) for r in rollouts]
    with torch.no_grad():
        scored = token_logprobs(model, rows, pad_id=2).logprobs
    return [scored[i, scored.shape[1] - r.length :].tolist() for i, r in enumerate(rollouts)]


def max_gap(a: list[list[float]], b: list[list[float]]) -> float:
    assert [len(x) for x in a] == [len(y) for y in b]
    return max(abs(x - y) for xs, ys in zip(a, b, strict=True) for x, y in zip(xs, ys, strict=True))


def test_missing_vllm_python_names_the_make_target() -> None:
    with pytest.raises(ConfigError, match="make test-vllm"):
        vllm_python("/nonexistent/.venv-vllm/bin/python")


def test_generate_groups_stop_tokens_seeds_and_logprobs(
    engine: VLLMRolloutEngine, policy: LoadedModel
) -> None:
    assert engine.startup_seconds > 0 and engine.sync(policy.model).ok
    rollouts = engine.generate(ITEMS, SETTINGS, seed=0, step=0)
    tokenizer, stops = policy.tokenizer, stop_ids(policy)
    assert [(r.group, r.sample) for r in rollouts] == [(g, k) for g in range(3) for k in range(4)]
    for rollout in rollouts:
        assert rollout.item is ITEMS[rollout.group]
        assert rollout.prompt_ids == tuple(prompt_ids(tokenizer, rollout.item.prompt, SETTINGS.system))
        ends_on_stop = rollout.response_ids[-1] in stops
        assert ends_on_stop == (rollout.finish_reason == "stop")
        assert not stops & set(rollout.response_ids[:-1])
        if rollout.finish_reason == "length":
            assert rollout.length == SETTINGS.max_new_tokens
        body = rollout.response_ids[:-1] if ends_on_stop else rollout.response_ids
        assert rollout.text == tokenizer.decode(list(body), skip_special_tokens=True)
    assert {r.finish_reason for r in rollouts} == {"stop", "length"}

    # The trainer rescores the sampled ids itself; in float32 both sides agree on every token's log-prob.
    assert max_gap(trainer_scores(policy.model, rollouts), engine.last_logprobs) < 1e-3

    again = engine.generate(ITEMS, SETTINGS, seed=0, step=0)
    assert [r.response_ids for r in again] == [r.response_ids for r in rollouts]
    later = engine.generate(ITEMS, SETTINGS, seed=0, step=1)
    assert [r.response_ids for r in later] != [r.response_ids for r in rollouts]


def test_prompt_plus_budget_beyond_max_model_len_is_refused(engine: VLLMRolloutEngine) -> None:
    with pytest.raises(ConfigError, match="max_model_len"):
        engine.generate(ITEMS, RolloutSettings(samples=2, max_new_tokens=600), seed=0, step=0)


def test_sync_takes_effect_and_parity_tells_old_from_new(
    engine: VLLMRolloutEngine, policy: LoadedModel
) -> None:
    old = policy.model
    updated = noisy_copy(old, seed=1)
    before = engine.generate(ITEMS, SETTINGS, seed=0, step=0)
    assert not engine._parity(updated, time.perf_counter()).ok  # not synced yet: the probe sees it
    try:
        report = engine.sync(updated)
        assert report.ok and report.max_abs_diff < 1e-3 and report.seconds > 0
        stale = engine._parity(old, time.perf_counter())
        assert not stale.ok, f"the engine still matches the old weights (diff {stale.max_abs_diff:.3g})"
        after = engine.generate(ITEMS, SETTINGS, seed=0, step=0)
        assert [r.response_ids for r in after] != [r.response_ids for r in before]
        # The engine now samples from the updated policy: its log-probs are the new weights', not the old.
        assert max_gap(trainer_scores(updated, after), engine.last_logprobs) < 1e-3
        assert max_gap(trainer_scores(old, after), engine.last_logprobs) > 0.1
    finally:
        assert engine.sync(old).ok  # the module's engine goes back to the fixture's weights


def test_a_broken_sync_fails_the_parity_check(
    engine: VLLMRolloutEngine, policy: LoadedModel, tmp_path: Path
) -> None:
    from safetensors.torch import save_file

    state = policy.model.state_dict()
    zeroed = {k: torch.zeros_like(v) for k, v in state.items() if k != "lm_head.weight"}
    save_file(zeroed, str(tmp_path / "zeroed.safetensors"))
    try:
        engine._load(tmp_path / "zeroed.safetensors")
        report = engine._parity(policy.model, time.perf_counter())
        assert not report.ok and report.max_abs_diff > report.tolerance
    finally:
        assert engine.sync(policy.model).ok


def test_server_errors_come_back_with_their_message(engine: VLLMRolloutEngine, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="load_weights"):
        engine._load(tmp_path / "missing.safetensors")
    with pytest.raises(RuntimeError, match="unknown op"):
        engine._call({"op": "bogus"})
    assert engine.generate(ITEMS[:1], SETTINGS, seed=0, step=0)  # the server keeps serving


def test_close_stops_the_server_and_removes_its_files(engine: VLLMRolloutEngine) -> None:
    """Closes the module's engine: keep this the last test that uses it."""
    server = engine._server
    engine.close()
    assert server.process.poll() is not None and not server.workdir.exists()
    engine.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        engine.generate(ITEMS, SETTINGS, seed=0, step=0)


RECIPE = """
[verifiers.short]
factory = "length"
options = { budget = 40, unit = "chars", tolerance = 3.0 }

[labels.brevity]
format_weight = 0.0
components = [{ verifier = "short", weight = 1.0 }]
"""


def test_trainer_runs_two_rl_steps_on_the_vllm_backend(tmp_path: Path) -> None:
    from safework.core.models import load_tokenizer, tiny_loaded
    from safework.rl.config import from_dict
    from safework.rl.trainer import Trainer

    loaded = tiny_loaded(load_tokenizer(), hidden=128, seed=0)
    loaded.model.save_pretrained(tmp_path / "policy")
    loaded.tokenizer.save_pretrained(tmp_path / "policy")
    (tmp_path / "recipe.toml").write_text(RECIPE, encoding="utf-8")
    table = {
        "seed": 1,
        "threads": 1,
        "model": {"path": str(tmp_path / "policy")},
        "reward": {"recipe": str(tmp_path / "recipe.toml")},
        "rollout": {"backend": "vllm", "samples": 4, "max_new_tokens": 12},
        "optim": {"lr": 1e-3, "mini_batches": 2},
        "stages": [
            {
                "name": "a",
                "kind": "rl",
                "steps": 2,
                "prompts_per_step": 2,
                "data": [{"source": "gsm-symbolic", "label": "brevity"}],
            }
        ],
    }
    summary = Trainer(from_dict(table), tmp_path / "run", show_progress=False).run()
    assert summary["steps"] == 2
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "rl"] == [1, 2]
    # Every update was followed by a weight sync whose probe parity held (the trainer stops otherwise).
    assert all(r["sync_max_abs_diff"] <= PROBE_TOLERANCE for r in records if r["kept_responses"])
