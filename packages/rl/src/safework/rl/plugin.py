"""The rl package as a plugin of core: the ``safework rl`` CLI group and the built-in advantage estimators."""

from __future__ import annotations

import click

from safework.core.hookspecs import Register, hookimpl
from safework.core.registry_cli import listing_command
from safework.rl.cli import sft_command, train_command
from safework.rl.evaluation.cli import eval_command


@click.group("rl")
def rl_group() -> None:
    """SafeLadder post-training stages."""


rl_group.add_command(listing_command("register_advantage_estimators", "advantage estimators", "estimators"))
rl_group.add_command(eval_command)
rl_group.add_command(train_command)
rl_group.add_command(sft_command)


@hookimpl
def register_advantage_estimators(register: Register) -> None:
    from safework.rl.advantages import ESTIMATORS

    for name, estimator in ESTIMATORS.items():
        register(name, estimator)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(rl_group)
