"""The SafeLadder trainer end to end on a tiny random-init model with SmolLM2's tokenizer and a rule reward.

Real catalogue prompts, real rollouts through the core generation loop, real recipe scoring (a length rule,
so groups have graded rewards), real checkpoints on disk; only the policy is tiny, so a step takes a second.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from safework.core.errors import ConfigError
from safework.rl.config import from_dict, load_config
from safework.rl.trainer import Trainer


def weights(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(checkpoint) / "model.safetensors"))


def rewards(run: Path) -> list[tuple[int, float]]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["reward"]) for r in lines if r["kind"] == "rl"]


@pytest.fixture(scope="module")
def reference_run(
    tiny_dir: Path,
    recipe_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    config_table: Callable[..., dict[str, Any]],
) -> Path:
    """The uninterrupted four-step run every resume is compared with."""
    out = tmp_path_factory.mktemp("reference")
    summary = Trainer(from_dict(config_table(tiny_dir, recipe_path)), out, show_progress=False).run()
    assert summary["steps"] == 4
    return out


def test_four_steps_learn_and_report(reference_run: Path) -> None:
    lines = [json.loads(x) for x in (reference_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4]
    assert [r["stage"] for r in lines] == ["a", "a", "b", "b"]
    for r in lines:
        assert 0 <= r["zero_variance_share"] <= 1 and r["groups"] == 3
        for key in (
            "reward",
            "reward_short",
            "length_mean",
            "clip_fraction",
            "drift",
            "entropy",
            "tokens_per_s",
        ):
            assert key in r, key
    # From the second mini-batch on the policy has moved: the log-ratio is no longer exactly 0.
    assert any(r["ratio_max"] != 1.0 for r in lines if r["kept_responses"])
    assert (reference_run / "curves.png").stat().st_size > 10_000
    final = weights(reference_run / "checkpoints" / "step-000004-s2" / "model")
    first = weights(reference_run / "checkpoints" / "step-000001-s0" / "model")
    assert any(not torch.equal(final[k], first[k]) for k in final)


def test_two_steps_resume_two_steps_equals_four_bit_for_bit(
    reference_run: Path,
    tiny_dir: Path,
    recipe_path: Path,
    tmp_path: Path,
    config_table: Callable[..., dict[str, Any]],
) -> None:
    config = from_dict(config_table(tiny_dir, recipe_path))
    # Stop inside stage b (after step 3) so the optimiser, scheduler and data cursor all resume mid-stage.
    stopped = Trainer(config, tmp_path, show_progress=False, max_steps=3).run()
    assert stopped["steps"] == 3 and stopped["checkpoint"].endswith("step-000003-s1/model")
    resumed = Trainer(config, tmp_path, resume=tmp_path, show_progress=False).run()
    assert resumed["steps"] == 4
    ours = weights(resumed["checkpoint"])
    theirs = weights(reference_run / "checkpoints" / "step-000004-s2" / "model")
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    # The resumed engine sampled from the resumed weights: step 4's rollouts (and rewards) are the same.
    assert rewards(tmp_path) == rewards(reference_run)


def test_sigkill_mid_step_loses_only_the_steps_since_the_checkpoint(
    train_command: Callable[..., list[str]],
    reference_run: Path,
    tiny_dir: Path,
    recipe_path: Path,
    tmp_path: Path,
    config_table: Callable[..., dict[str, Any]],
    write_config: Callable[[Path, dict[str, Any]], Path],
) -> None:
    config = write_config(tmp_path / "run.toml", config_table(tiny_dir, recipe_path))
    out = tmp_path / "run"
    process = subprocess.Popen(
        train_command(config, out),
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    latest = out / "checkpoints" / "latest"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if latest.is_file() and latest.read_text().strip() == "step-000002-s1":
            break
        time.sleep(0.05)
    assert process.poll() is None, (
        f"the run ended before it could be killed: {process.stderr.read()[-2000:]!r}"
    )
    process.send_signal(signal.SIGKILL)  # mid step 3: between two checkpoints
    process.wait(timeout=60)
    assert latest.read_text().strip() == "step-000002-s1"
    resumed = Trainer(load_config(config), out, resume=out, show_progress=False).run()
    ours, theirs = (
        weights(resumed["checkpoint"]),
        weights(reference_run / "checkpoints" / "step-000004-s2" / "model"),
    )
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert rewards(out) == rewards(reference_run)  # metrics.jsonl shows every step once


def test_cli_json_summary_names_a_loadable_checkpoint(
    train_command: Callable[..., list[str]],
    tiny_dir: Path,
    recipe_path: Path,
    tmp_path: Path,
    config_table: Callable[..., dict[str, Any]],
    write_config: Callable[[Path, dict[str, Any]], Path],
) -> None:
    table = config_table(tiny_dir, recipe_path)
    table["stages"] = table["stages"][:1]
    config = write_config(tmp_path / "one.toml", table)
    done = subprocess.run(
        train_command(config, tmp_path / "run", "--json"),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 2 and summary["stages"] == ["a"]
    assert isinstance(summary["mean_reward_first"], float) and isinstance(summary["mean_reward_last"], float)
    from safework.core.models import load_causal_lm

    loaded = load_causal_lm(summary["checkpoint"])
    assert loaded.kind == "hf-dir"


def test_zero_variance_groups_are_skipped_and_counted(
    tiny_dir: Path, recipe_path: Path, tmp_path: Path, config_table: Callable[..., dict[str, Any]]
) -> None:
    """The tiny model never writes <think>: the format-only label gives every response 0, so no group has a
    spread, nothing is updated and every group is counted as zero-variance (no phantom advantages)."""
    table = config_table(tiny_dir, recipe_path)
    table["stages"] = [{**table["stages"][0], "data": [{"source": "gsm-symbolic", "label": "format-only"}]}]
    summary = Trainer(from_dict(table), tmp_path, show_progress=False).run()
    assert summary["zero_variance_share"] == 1.0
    line = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert line["kept_responses"] == 0 and line["reward"] == 0.0
    assert all(torch.equal(v, weights(tiny_dir)[k]) for k, v in weights(summary["checkpoint"]).items())


def test_sft_stage_distils_verified_traces(
    tiny_dir: Path, recipe_path: Path, tmp_path: Path, config_table: Callable[..., dict[str, Any]]
) -> None:
    table = config_table(tiny_dir, recipe_path)
    table["stages"] = [
        {
            "name": "cot-sft",
            "kind": "sft",
            "prompts_per_step": 3,
            "data": [{"source": "gsm-symbolic", "label": "brevity"}],
            "traces": {"samples": 2, "think_tokens": 8, "answer_tokens": 8, "min_score": 0.5},
            "optim": {"lr": 1e-3, "epochs": 1, "mini_batches": 1},
        }
    ]
    summary = Trainer(from_dict(table), tmp_path, show_progress=False).run()
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert record["kind"] == "sft" and record["traces"] == 6
    assert record["survival"]["brevity"]["sampled"] == 6
    traces = [json.loads(x) for x in (tmp_path / "sft" / "cot-sft" / "traces.jsonl").read_text().splitlines()]
    assert len(traces) == 6 and sum(t["kept"] for t in traces) == record["kept"]
    for trace in traces:
        assert trace["response"].startswith("<think>\n") and "\n</think>\n" in trace["response"]
        if trace["kept"]:
            assert trace["reward"]["components"]["short"]["score"] >= 0.5
    if record["kept"]:
        assert any(
            not torch.equal(v, weights(tiny_dir)[k]) for k, v in weights(summary["checkpoint"]).items()
        )


# -- bad input: a clear error naming the fix, before any model is loaded ----------------------------------
def test_unknown_config_key_names_the_key_and_the_accepted_ones(
    tiny_dir: Path, recipe_path: Path, config_table: Callable[..., dict[str, Any]]
) -> None:
    table = config_table(tiny_dir, recipe_path)
    table["optim"] = {**table["optim"], "learning_rate": 1e-3}
    with pytest.raises(ConfigError, match=r"unknown key\(s\) learning_rate; it accepts: lr"):
        from_dict(table)
    with pytest.raises(ConfigError, match="unknown top-level key"):
        from_dict({**config_table(tiny_dir, recipe_path), "optimiser": {}})


def test_unknown_estimator_or_option_fails_in_preflight(
    tiny_dir: Path, recipe_path: Path, tmp_path: Path, config_table: Callable[..., dict[str, Any]]
) -> None:
    table = config_table(tiny_dir, recipe_path)
    table["stages"][1]["algorithm"] = {"estimator": "grpo++"}
    with pytest.raises(ConfigError, match="unknown advantage estimator 'grpo\\+\\+'; installed: cale, cpgd"):
        Trainer(from_dict(table), tmp_path).preflight()
    table["stages"][1]["algorithm"] = {"estimator": "cale", "estimator_options": {"lambda": 1.0}}
    with pytest.raises(ConfigError, match="lambda"):
        Trainer(from_dict(table), tmp_path).preflight()


def test_unknown_verifier_fails_in_preflight(
    tiny_dir: Path, tmp_path: Path, config_table: Callable[..., dict[str, Any]]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[labels.brevity]\ncomponents = [{ verifier = "shortness", weight = 1.0 }]\n')
    with pytest.raises(ConfigError, match="unknown verifier 'shortness'"):
        Trainer(from_dict(config_table(tiny_dir, bad)), tmp_path).preflight()


def test_a_source_with_no_prompts_fails_in_preflight(
    tiny_dir: Path,
    recipe_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    config_table: Callable[..., dict[str, Any]],
) -> None:
    from safework.rl import data

    monkeypatch.setattr(data.SourceSpec, "prompts", lambda self: [])
    with pytest.raises(ConfigError, match="'gsm-symbolic' yielded no training prompts"):
        Trainer(from_dict(config_table(tiny_dir, recipe_path)), tmp_path).preflight()
    with pytest.raises(ConfigError, match="unknown prompt source 'harmbench'"):
        from_dict(
            {
                **config_table(tiny_dir, recipe_path),
                "stages": [{"name": "x", "kind": "rl", "data": [{"source": "harmbench"}]}],
            }
        )


def test_a_checkpoint_of_another_model_is_refused_before_loading(
    reference_run: Path,
    tiny_dir: Path,
    recipe_path: Path,
    tmp_path: Path,
    config_table: Callable[..., dict[str, Any]],
) -> None:
    table = config_table(tiny_dir, recipe_path, model={"path": "default"})
    with pytest.raises(ConfigError, match=r"was trained from model .*but the config names .default."):
        Trainer(from_dict(table), tmp_path, resume=reference_run).preflight()
    with pytest.raises(ConfigError, match="neither a checkpoint"):
        Trainer(from_dict(config_table(tiny_dir, recipe_path)), tmp_path, resume=tmp_path)


def test_reward_server_and_in_process_rewards_train_identically(
    reference_run: Path,
    tiny_dir: Path,
    recipe_path: Path,
    tmp_path: Path,
    config_table: Callable[..., dict[str, Any]],
) -> None:
    """The same run scored through a real gRPC reward server on 127.0.0.1: identical rewards, identical
    weights (both paths compose through safework.verifiers.recipe.compose)."""
    from safework.verifiers.recipe import Recipe
    from safework.verifiers.server import ServerConfig, load_verifiers, start_reward_server

    recipe = Recipe.load(recipe_path)
    served = load_verifiers(None, recipe)
    with start_reward_server(
        served, config=ServerConfig(max_batch=64, max_wait_ms=5), recipe=recipe
    ) as server:
        table = config_table(
            tiny_dir, recipe_path, reward={"recipe": str(recipe_path), "server": server.target}
        )
        summary = Trainer(from_dict(table), tmp_path, show_progress=False).run()
    assert rewards(tmp_path) == rewards(reference_run)
    ours, theirs = (
        weights(summary["checkpoint"]),
        weights(reference_run / "checkpoints" / "step-000004-s2" / "model"),
    )
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_a_finished_run_folder_is_not_overwritten(
    reference_run: Path, tiny_dir: Path, recipe_path: Path, config_table: Callable[..., dict[str, Any]]
) -> None:
    with pytest.raises(ConfigError, match="already holds a training run; continue it with --resume"):
        Trainer(from_dict(config_table(tiny_dir, recipe_path)), reference_run).preflight()
