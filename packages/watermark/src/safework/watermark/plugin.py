"""The watermark package as a plugin of core: contributes the ``safework watermark`` CLI group."""

from __future__ import annotations

import click

from safework.core.hookspecs import hookimpl
from safework.core.registry_cli import listing_command


@click.group("watermark")
def watermark_group() -> None:
    """Multi-bit text watermarking (CredID) and attribution."""


watermark_group.add_command(listing_command("register_watermark_schemes", "watermark schemes", "schemes"))
watermark_group.add_command(listing_command("register_attacks", "attacks", "attacks"))


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(watermark_group)
