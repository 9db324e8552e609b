"""``safework watermark keygen``: a fresh 128-bit key in a 0600 file."""

from __future__ import annotations

from pathlib import Path

import click

from safework.core.console import print_json


@click.command("keygen")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Where to write the key.")
@click.option("--force", is_flag=True, help="Replace an existing key file (its key is lost).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def keygen_command(out: Path, force: bool, as_json: bool) -> None:
    """Write a new random watermark key (keep it secret: it can embed and extract)."""
    from safework.watermark.keys import WatermarkKey

    key = WatermarkKey.generate()
    key.to_file(out, force=force)
    if as_json:
        print_json({"key_file": str(out), "key_id": key.fingerprint()})
    else:
        click.echo(f"wrote {out} (key id {key.fingerprint()})")
