"""The rl package as a plugin of core: contributes the ``safework rl`` CLI group (estimators, eval)."""

from __future__ import annotations

import click

from safework.core.hookspecs import hookimpl
from safework.core.registry_cli import listing_command
from safework.rl.evaluation.cli import eval_command


@click.group("rl")
def rl_group() -> None:
    """SafeLadder post-training stages."""


rl_group.add_command(listing_command("register_advantage_estimators", "advantage estimators", "estimators"))
rl_group.add_command(eval_command)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(rl_group)
