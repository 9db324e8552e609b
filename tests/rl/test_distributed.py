"""DeepSpeed ZeRO-2 and ZeRO-3 on two CPU ranks (gloo) reach the single-process parameters.

Same config, same global batch (4 prompts x 4 responses, two mini-batches per step, two steps): each rank
rolls out half the prompts, advantages and the mini-batch plan are computed globally, and every rank's loss
is rescaled so DeepSpeed's gradient average equals the single-process mini-batch mean. Stated tolerance: the
largest parameter difference stays below 1e-5 (the updates themselves move parameters by ~4e-3; what is left
is float32 summation order in the all-reduce).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import load_file

from safework.rl.config import from_dict
from safework.rl.trainer import Trainer

TOLERANCE = 1e-5


def _table(
    config_table: Callable[..., dict[str, Any]], tiny_dir: Path, recipe_path: Path, stage: int
) -> dict[str, Any]:
    table = config_table(tiny_dir, recipe_path, distributed={"zero_stage": stage})
    table["stages"] = [{**table["stages"][0], "prompts_per_step": 4}]
    return table


@pytest.fixture(scope="module")
def single(
    config_table: Callable[..., dict[str, Any]],
    tiny_dir: Path,
    recipe_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("single")
    return Trainer(from_dict(_table(config_table, tiny_dir, recipe_path, 2)), out, show_progress=False).run()


@pytest.mark.parametrize("stage", [2, 3])
def test_zero_on_two_ranks_matches_one_process(
    stage: int,
    single: dict[str, Any],
    config_table: Callable[..., dict[str, Any]],
    write_config: Callable[[Path, dict[str, Any]], Path],
    tiny_dir: Path,
    recipe_path: Path,
    tmp_path: Path,
    train_command: Callable[..., list[str]],
) -> None:
    config = write_config(tmp_path / "run.toml", _table(config_table, tiny_dir, recipe_path, stage))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DS_ACCELERATOR": "cpu"}
    done = subprocess.run(
        train_command(config, tmp_path / "run", "--json", ranks=2),
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, "only rank 0 reports"
    summary = json.loads(lines[0])
    assert summary["steps"] == 2
    assert summary["mean_reward_first"] == single["mean_reward_first"]  # the same rollouts, split over ranks
    ours = load_file(str(Path(summary["checkpoint"]) / "model.safetensors"))
    theirs = load_file(str(Path(single["checkpoint"]) / "model.safetensors"))
    start = load_file(str(tiny_dir / "model.safetensors"))
    moved = max(float((theirs[k] - start[k]).abs().max()) for k in theirs)
    diff = max(float((ours[k] - theirs[k]).abs().max()) for k in theirs)
    assert moved > 100 * TOLERANCE and diff < TOLERANCE, (moved, diff)
