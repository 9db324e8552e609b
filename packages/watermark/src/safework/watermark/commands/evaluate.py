"""``safework watermark evaluate``: generation, extraction, human controls, perplexity, attacks in one run."""

from __future__ import annotations

from pathlib import Path

import click

from safework.core.console import print_json


@click.command("evaluate")
@click.option("--scheme", required=True, help="Watermark scheme.")
@click.option("--bits", required=True, type=int, help="Payload width in bits (0 for kgw).")
@click.option("--n", "n", type=int, default=100, show_default=True, help="Watermarked texts to generate.")
@click.option("--human", type=int, default=500, show_default=True, help="Human passages for FPR/calibration.")
@click.option(
    "--attack",
    "attacks",
    multiple=True,
    metavar="NAME:STRENGTH",
    help="Attack the watermarked texts, e.g. substitution:0.1 (repeatable).",
)
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option(
    "--key-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Key to use (default: a fresh key, saved as OUT/key.json).",
)
@click.option("--model", default="default", show_default=True, help="Generator model.")
@click.option("--oracle", default="gemma-3-270m", show_default=True, help="Oracle LM for perplexity.")
@click.option("--no-perplexity", is_flag=True, help="Skip the oracle perplexity (faster).")
@click.option("--max-new-tokens", type=int, default=200, show_default=True)
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--symbol-bits", type=int, default=None, help="Bits per payload slot (scheme default).")
@click.option("--delta", type=float, default=None, help="Green-token logit bias (scheme default).")
@click.option("--option", "extra", multiple=True, metavar="NAME=VALUE", help="Other scheme options.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of the summary.")
def evaluate_command(
    scheme: str,
    bits: int,
    n: int,
    human: int,
    attacks: tuple[str, ...],
    out: Path,
    key_file: Path | None,
    model: str,
    oracle: str,
    no_perplexity: bool,
    max_new_tokens: int,
    batch_size: int,
    seed: int,
    symbol_bits: int | None,
    delta: float | None,
    extra: tuple[str, ...],
    as_json: bool,
) -> None:
    """Measure success, bit accuracy, FPR, p-value calibration, perplexity and robustness; write OUT/."""
    from safework.watermark.attacks import parse_attack_spec
    from safework.watermark.commands.common import scheme_kwargs
    from safework.watermark.engine import load_watermarker
    from safework.watermark.evaluation import EvalConfig, run_evaluation, summary_table
    from safework.watermark.keys import WatermarkKey

    parsed = [parse_attack_spec(a) for a in attacks]
    if key_file is None:
        key = WatermarkKey.generate()
        key.to_file(out / "key.json", force=True)
    else:
        key = WatermarkKey.from_file(key_file)
    watermarker = load_watermarker(
        scheme, key, bits, model=model, symbol_bits=symbol_bits, **scheme_kwargs(delta, extra)
    )
    config = EvalConfig(
        n=n,
        human=human,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
        attacks=parsed,
        perplexity=not no_perplexity,
        oracle=oracle,
    )
    results = run_evaluation(watermarker, config, out)
    if as_json:
        print_json(results)
    else:
        click.echo(summary_table(results))
        click.echo(f"wrote {out}/results.json, summary.md, bit_accuracy.png, example.html")
