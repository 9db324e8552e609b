"""``safework demo``: the project's main job for CredID (a TTP and three vendors, real processes)."""

from __future__ import annotations

from pathlib import Path

import click

from safework.core.console import print_json


@click.command("demo")
@click.option(
    "--n", type=click.IntRange(1, 40), default=30, show_default=True, help="Chat answers per vendor."
)
@click.option("--human", type=click.IntRange(0, 400), default=100, show_default=True, help="Human passages.")
@click.option("--max-new-tokens", type=click.IntRange(16, 1024), default=200, show_default=True)
@click.option("--temperature", type=click.FloatRange(0, 2), default=0.7, show_default=True)
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=0.9, show_default=True)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=1e-3,
    show_default=True,
    help="The TTP's family-wise level for attributing a text.",
)
@click.option(
    "--second-model",
    default="gemma-3-270m",
    show_default=True,
    help="The third vendor's model: gemma-3-270m, default, an HF folder or a GGUF file.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Prompt order and sampling seeds.")
@click.option(
    "--keep",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Keep the network's credentials, stores and logs in this (new) folder.",
)
@click.option(
    "--robustness",
    is_flag=True,
    help="Also attribute every answer after 10 % word substitution and after a paraphrase by another model.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def demo_command(
    n: int,
    human: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    alpha: float,
    second_model: str,
    seed: int,
    keep: Path | None,
    robustness: bool,
    as_json: bool,
) -> None:
    """Start a CredID TTP and three vendors on 127.0.0.1, let each vendor answer chat requests, and have
    the TTP attribute every answer and a set of human passages; print the identification table."""
    from safework.watermark.demo import DemoSettings, print_report, run_demo

    settings = DemoSettings(
        n, human, max_new_tokens, temperature, top_p, alpha, second_model, seed, robustness=robustness
    )
    try:
        report = run_demo(settings, keep)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if as_json:
        print_json(report)
    else:
        print_report(report)
