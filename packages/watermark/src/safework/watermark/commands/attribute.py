"""``safework watermark attribute``: ask the TTP which vendor (and identity) produced each text."""

from __future__ import annotations

from pathlib import Path

import click

from safework.core.console import print_json
from safework.core.errors import SafeworkError
from safework.watermark.commands.common import party_options


@click.command("attribute")
@click.option("--ttp", "target", required=True, help="host:port of the TTP.")
@party_options
@click.option("--text", default=None, help="One suspect text.")
@click.option(
    "--texts-jsonl",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="JSONL with a `text` field per line.",
)
@click.option("--alpha", type=float, default=0.0, help="Family-wise level (0: the TTP's default, 0.01).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per text.")
def attribute_command(
    target: str,
    pki_dir: Path,
    name: str,
    signing_key: Path,
    text: str | None,
    texts_jsonl: Path | None,
    alpha: float,
    as_json: bool,
) -> None:
    """Attribute texts: decision vendor / none / ambiguous, the vendor, the identity and the p-value."""
    from safework.core.cli import read_jsonl_lines
    from safework.watermark.client import Party, TtpClient

    if (text is None) == (texts_jsonl is None):
        raise click.UsageError("give exactly one of --text or --texts-jsonl")

    def parse(value: object) -> str:
        if not isinstance(value, dict) or not isinstance(value.get("text"), str) or not value["text"].strip():
            raise ValueError("each line needs a non-empty string `text` field")
        return str(value["text"])

    try:
        if text is not None:
            texts = [text]
        else:
            assert texts_jsonl is not None
            lines = read_jsonl_lines(texts_jsonl, parse, example='{"text": "..."}', action="attributed")
            texts = [t for _, t in lines]
    except SafeworkError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        with TtpClient(target, Party.load(pki_dir, name, signing_key)) as ttp:
            for item in texts:
                result = ttp.attribute(item, alpha=alpha)
                if as_json:
                    print_json(result.to_json())
                else:
                    who = f"{result.vendor_id} {result.identity}" if result.decision == "vendor" else ""
                    flag = (
                        f" (partial: {', '.join(result.missing_vendors)} missing)" if result.partial else ""
                    )
                    click.echo(f"{result.decision} {who} p={result.p_value:.3g}{flag}")
    except SafeworkError as exc:
        raise click.ClickException(str(exc)) from exc
