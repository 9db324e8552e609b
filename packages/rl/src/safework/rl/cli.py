"""``safework rl train`` and ``safework rl sft``: run a SafeLadder config (stages in order), or resume one.

Importing this module stays cheap (no torch): the CLI imports it to build ``safework --help``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from safework.core.console import err_console

DEFAULT_OUT = Path("rl-runs/run")


def _run(
    config_path: Path,
    out: Path,
    resume: Path | None,
    as_json: bool,
    only: str | None,
    max_steps: int | None = None,
) -> None:
    from safework.rl.config import load_config
    from safework.rl.trainer import Trainer

    config = load_config(config_path)
    if only is not None:
        from dataclasses import replace

        from safework.core.errors import ConfigError

        stages = tuple(s for s in config.stages if s.kind == only)
        if not stages:
            raise ConfigError(f"{config_path} has no {only} stage; `safework rl train` runs every stage")
        config = replace(config, stages=stages)
    summary = Trainer(config, out, resume=resume, show_progress=True, max_steps=max_steps).run()
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun/deepspeed only rank 0 reports
        _report(summary, as_json)


def _report(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary))
        return
    first, last = summary["mean_reward_first"], summary["mean_reward_last"]
    err_console.print(f"[bold]{summary['steps']}[/bold] RL steps over stages {', '.join(summary['stages'])}")
    if first is not None and last is not None:
        err_console.print(
            f"mean recipe reward: first step {first:.3f} -> last step {last:.3f} ({last - first:+.3f})"
        )
    for name, before in summary["components_first"].items():
        after = summary["components_last"].get(name)
        if isinstance(before, float) and isinstance(after, float):
            err_console.print(f"  {name:<28} {before:.3f} -> {after:.3f} ({after - before:+.3f})")
    err_console.print(f"checkpoint: {summary['checkpoint']}  (safework rl eval --model <it>)")
    err_console.print(f"metrics: {summary['metrics']}  curves: {summary['curves']}")


_config = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Run config (TOML; see examples/rl/).",
)
_out = click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=DEFAULT_OUT,
    show_default=True,
    help="Run folder: checkpoints/, metrics.jsonl, curves.png, sft/ traces.",
)
_resume = click.option(
    "--resume",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None,
    help="Continue from a run folder's latest checkpoint (or a checkpoints/step-* folder).",
)
_json = click.option(
    "--json", "as_json", is_flag=True, help="Print the run summary as one JSON line on stdout."
)


@click.command("train")
@_config
@_out
@_resume
@_json
@click.option(
    "--max-steps",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many RL steps in all (checkpointed); --resume continues exactly.",
)
def train_command(
    config_path: Path, out: Path, resume: Path | None, as_json: bool, max_steps: int | None
) -> None:
    """Run every stage of a SafeLadder config (CoT-SFT, M3-RL, CALE), checkpointing as it goes."""
    _run(config_path, out, resume, as_json, None, max_steps)


@click.command("sft")
@_config
@_out
@_resume
@_json
def sft_command(config_path: Path, out: Path, resume: Path | None, as_json: bool) -> None:
    """Run only the CoT-SFT stages of a config: distil verified traces, then fine-tune on them."""
    _run(config_path, out, resume, as_json, "sft")
