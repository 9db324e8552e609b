"""``safework watermark extract``: recover the payload (or nothing) from texts, with calibrated statistics."""

from __future__ import annotations

from pathlib import Path

import click

from safework.core.console import print_json, print_table
from safework.watermark.commands.common import one_or_file, scheme_kwargs, scheme_options


@click.command("extract")
@scheme_options
@click.option("--text", default=None, help="The text to examine (the generated part, prompt excluded).")
@click.option(
    "--texts-jsonl",
    type=click.Path(path_type=Path),
    default=None,
    help="JSONL with a 'text' (or 'prompt') field per line.",
)
@click.option(
    "--alpha",
    type=float,
    default=1e-3,
    show_default=True,
    help="Report a payload only when the presence p-value is at most this.",
)
@click.option(
    "--html",
    "html_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write an HTML view per text (token colours: hit / miss / skipped) into this folder.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per text on stdout.")
def extract_command(
    scheme: str,
    key_file: Path,
    bits: int,
    model: str,
    symbol_bits: int | None,
    crc: bool,
    delta: float | None,
    extra: tuple[str, ...],
    text: str | None,
    texts_jsonl: Path | None,
    alpha: float,
    html_dir: Path | None,
    as_json: bool,
) -> None:
    """Extract the payload from each text: hex payload (or null), p-value, z and per-bit confidence."""
    from safework.watermark.engine import load_watermarker
    from safework.watermark.keys import WatermarkKey

    texts = one_or_file(text, texts_jsonl, "--text", "--texts-jsonl", ("text", "prompt"))
    key = WatermarkKey.from_file(key_file)
    watermarker = load_watermarker(
        scheme,
        key,
        bits,
        model=model,
        symbol_bits=symbol_bits,
        crc=crc,
        alpha=alpha,
        **scheme_kwargs(delta, extra),
    )
    rows = []
    for index, item in enumerate(texts):
        ids = watermarker.tokenize(item)
        result = watermarker.extract_ids(ids)
        record = {"index": index, **result.to_json()}
        if html_dir is not None:
            from safework.watermark.highlight import write_view

            record["html"] = str(write_view(watermarker, ids, result, html_dir / f"text-{index:04d}.html"))
        if as_json:
            print_json(record)
        rows.append(
            (index, record["payload"], f"{result.p_value:.3g}", f"{result.z:.2f}", result.scored_tokens)
        )
    if not as_json:
        print_table("watermark extraction", ["#", "payload", "p-value", "z", "scored tokens"], rows)
