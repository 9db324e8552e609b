"""``safework watermark embed``: generate watermarked continuations carrying a payload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from safework.core.console import print_json
from safework.watermark.commands.common import one_or_file, scheme_kwargs, scheme_options


def parse_payload(text: str, bits: int) -> Any:
    from safework.core.types import WatermarkPayload
    from safework.watermark.errors import WatermarkInputError

    if bits == 0:
        return WatermarkPayload(0, 0)
    try:
        return WatermarkPayload.from_hex(text, bits)
    except ValueError as exc:
        raise WatermarkInputError(f"--payload: {exc}") from None


@click.command("embed")
@scheme_options
@click.option("--payload", default="", help="Payload as hex (e.g. beef); ignored for zero-bit schemes.")
@click.option("--prompt", default=None, help="One prompt to continue.")
@click.option(
    "--prompts-jsonl",
    type=click.Path(path_type=Path),
    default=None,
    help="JSONL with a 'prompt' (or 'text') field per line.",
)
@click.option("--max-new-tokens", type=int, default=200, show_default=True)
@click.option(
    "--min-new-tokens", type=int, default=0, show_default=True, help="Suppress EOS until this many."
)
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--temperature", type=float, default=1.0, show_default=True)
@click.option("--top-p", type=float, default=1.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per prompt on stdout.")
def embed_command(
    scheme: str,
    key_file: Path,
    bits: int,
    model: str,
    symbol_bits: int | None,
    crc: bool,
    delta: float | None,
    extra: tuple[str, ...],
    payload: str,
    prompt: str | None,
    prompts_jsonl: Path | None,
    max_new_tokens: int,
    min_new_tokens: int,
    batch_size: int,
    seed: int,
    temperature: float,
    top_p: float,
    as_json: bool,
) -> None:
    """Generate a watermarked continuation of each prompt carrying PAYLOAD."""
    from safework.watermark.engine import load_watermarker
    from safework.watermark.errors import WatermarkInputError
    from safework.watermark.generation import generate
    from safework.watermark.keys import WatermarkKey

    prompts = one_or_file(prompt, prompts_jsonl, "--prompt", "--prompts-jsonl", ("prompt", "text"))
    if bits > 0 and not payload:
        raise WatermarkInputError("--payload is required for a multi-bit scheme, e.g. --payload beef")
    key = WatermarkKey.from_file(key_file)
    parsed = parse_payload(payload, bits)
    watermarker = load_watermarker(
        scheme, key, bits, model=model, symbol_bits=symbol_bits, crc=crc, **scheme_kwargs(delta, extra)
    )
    results = generate(
        watermarker,
        prompts,
        [parsed] * len(prompts),
        max_new_tokens=max_new_tokens,
        min_new_tokens=min_new_tokens,
        batch_size=batch_size,
        seed=seed,
        temperature=temperature,
        top_p=top_p,
    )
    for result in results:
        record = {**result.to_json(), "scheme": scheme, "bits": bits}
        if as_json:
            print_json(record)
        else:
            click.echo(f"[{record['payload']}] {result.text}\n")
