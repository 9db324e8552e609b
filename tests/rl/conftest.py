"""Fixtures for the rl tests: a tiny model on the real SmolLM2 tokenizer (chat template included), rule
stand-ins for the neural judges, and a tiny-policy training run (rule reward, real catalogue prompts), so
the harness and the trainer run end to end in seconds."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from safework.core.models import LoadedModel
    from safework.rl.evaluation.judges import Judges


@pytest.fixture(scope="session")
def tiny_chat_lm() -> LoadedModel:
    """A random-init two-layer model with SmolLM2's tokenizer: real chat template, milliseconds per token."""
    from safework.core.models import load_tokenizer, tiny_loaded

    return tiny_loaded(load_tokenizer("default"), seed=1)


@pytest.fixture
def rule_judges() -> Judges:
    """The harness's judges with the neural safety verifier and the knowledge embeddings replaced by rules."""
    from safework.rl.evaluation.judges import Judges
    from safework.verifiers.registry import get_verifier

    return Judges(
        {"safety": get_verifier("safety-keyword"), "knowledge": get_verifier("knowledge", semantic=False)}
    )


# -- trainer runs: a tiny policy saved as a Hugging Face folder and a graded rule reward ---------------------
RECIPE = """
[verifiers.short]
factory = "length"
options = { budget = 40, unit = "chars", tolerance = 3.0 }

[labels.brevity]
format_weight = 0.0
components = [{ verifier = "short", weight = 1.0 }]

[labels.format-only]
"""


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from safework.core.models import load_tokenizer, tiny_loaded

    folder = tmp_path_factory.mktemp("tiny-policy")
    loaded = tiny_loaded(load_tokenizer("default"), seed=0)
    loaded.model.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def recipe_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "recipe.toml"
    path.write_text(RECIPE, encoding="utf-8")
    return path


def _config_table(tiny_dir: Path, recipe_path: Path, **top: Any) -> dict[str, Any]:
    """Two RL stages (grpo + cpgd loss, then cale), two steps each: curriculum, estimators, resume points."""
    table: dict[str, Any] = {
        "seed": 1,
        "threads": 1,
        "model": {"path": str(tiny_dir)},
        "reward": {"recipe": str(recipe_path)},
        "rollout": {"samples": 4, "max_new_tokens": 12, "batch_size": 16},
        "optim": {"lr": 1e-3, "mini_batches": 2},
        "checkpoint": {"every": 1, "keep": 5},
        "stages": [
            {
                "name": "a",
                "kind": "rl",
                "steps": 2,
                "prompts_per_step": 3,
                "data": [{"source": "gsm-symbolic", "label": "brevity"}],
            },
            {
                "name": "b",
                "kind": "rl",
                "steps": 2,
                "prompts_per_step": 3,
                "data": [{"source": "nq-open", "label": "brevity"}],
                "algorithm": {"estimator": "cale", "estimator_options": {"alpha": 0.9}},
            },
        ],
    }
    table.update(top)
    return table


def _write_config(path: Path, table: dict[str, Any]) -> Path:
    """The table as TOML (only the shapes these tests use)."""

    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)

    lines = [f"{k} = {value(v)}" for k, v in table.items() if not isinstance(v, dict) and k != "stages"]
    for key, sub in table.items():
        if isinstance(sub, dict):
            lines += [f"[{key}]", *(f"{k} = {value(v)}" for k, v in sub.items())]
    for stage in table["stages"]:
        lines += ["[[stages]]", *(f"{k} = {value(v)}" for k, v in stage.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def config_table() -> Callable[..., dict[str, Any]]:
    """``config_table(tiny_dir, recipe_path, **top)``: a fresh run table (tests may mutate it)."""
    return _config_table


@pytest.fixture(scope="session")
def write_config() -> Callable[[Path, dict[str, Any]], Path]:
    """``write_config(path, table)``: the table as a TOML file, for runs started through the CLI."""
    return _write_config


def _train_command(config: Path, out: Path, *extra: str, ranks: int = 1) -> list[str]:
    launcher = ["-m", "torch.distributed.run", "--nproc_per_node", str(ranks)] if ranks > 1 else []
    return [
        sys.executable,
        *launcher,
        "-m",
        "safework.core.cli",
        "rl",
        "train",
        "--config",
        str(config),
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="session")
def train_command() -> Callable[..., list[str]]:
    """``train_command(config, out, *extra, ranks=1)``: ``safework rl train`` as a fresh process of this
    interpreter (the same venv), under torchrun when ``ranks`` > 1."""
    return _train_command
