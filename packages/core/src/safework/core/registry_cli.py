"""A reusable ``list`` command for any ``register_*`` hook, so each package's group lists what it has."""

from __future__ import annotations

import click

from safework.core.console import print_json, print_table
from safework.core.plugins import collect


def _describe(obj: object) -> str:
    """``module.Name`` of a registered class or function (or of an instance's class)."""
    target = obj if hasattr(obj, "__qualname__") else type(obj)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}"


def listing_command(hook_name: str, what: str, command_name: str = "list") -> click.Command:
    """A click command that lists the components registered through ``hook_name``."""

    @click.command(command_name, help=f"List the registered {what}.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    def command(as_json: bool) -> None:
        found = collect(hook_name)
        rows = [(name, _describe(obj)) for name, obj in sorted(found.items())]
        if as_json:
            print_json([{"name": n, "object": o} for n, o in rows])
        elif not rows:
            click.echo(f"no {what} registered yet")
        else:
            print_table(f"safework {what}", ["name", "object"], rows)

    return command
