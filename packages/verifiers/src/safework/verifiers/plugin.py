"""The verifiers package as a plugin of core: contributes the ``safework verifiers`` CLI group."""

from __future__ import annotations

import click

from safework.core.hookspecs import hookimpl
from safework.core.registry_cli import listing_command


@click.group("verifiers")
def verifiers_group() -> None:
    """Multi-principled verifiers and the reward server."""


verifiers_group.add_command(listing_command("register_verifiers", "verifiers"))


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(verifiers_group)
