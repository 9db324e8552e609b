"""Core's own plugin: registers core's CLI groups and the registry-carried data sets through the hooks."""

from __future__ import annotations

import click

from safework.core.hookspecs import Register, hookimpl


@hookimpl
def register_commands(cli: click.Group) -> None:
    from safework.core.data.cli import data_group
    from safework.core.models.cli import model_group
    from safework.core.ops.cli import ops_group

    cli.add_command(data_group)
    cli.add_command(model_group)
    cli.add_command(ops_group)


@hookimpl
def register_datasets(register: Register) -> None:
    from safework.core.data.catalogue import BUILTIN_DATASETS

    for dataset in BUILTIN_DATASETS:
        register(dataset.name, dataset)
