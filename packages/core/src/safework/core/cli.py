"""The ``safework`` command. Core adds ``plugins``; everything else arrives through ``register_commands``."""

from __future__ import annotations

import sys
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version

import click

from safework.core.console import err_console, print_json, print_table
from safework.core.errors import SafeworkError
from safework.core.plugins import get_plugin_manager, loaded_plugins

DISTRIBUTIONS = ("safework-core", "safework-verifiers", "safework-rl", "safework-watermark")


def _versions() -> str:
    parts = []
    for dist in DISTRIBUTIONS:
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            continue
    return ", ".join(parts)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="safework-core", prog_name="safework", message="%(prog)s: " + _versions())
def cli() -> None:
    """safework: trustworthy LLM deployment (SafeLadder verifiers and RL, CredID watermarking)."""


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_command(as_json: bool) -> None:
    """List loaded plugins with their version and source (filter with $SAFEWORK_PLUGINS)."""
    infos = loaded_plugins()
    if as_json:
        print_json([asdict(info) for info in infos])
        return
    print_table(
        "safework plugins",
        ["name", "version", "source", "hooks"],
        [(i.name, i.version, i.source, ", ".join(i.hooks)) for i in infos],
    )


def build_cli() -> click.Group:
    """The CLI with every plugin's commands added (idempotent)."""
    if not getattr(cli, "_plugins_added", False):
        get_plugin_manager().hook.register_commands(cli=cli)
        cli._plugins_added = True  # type: ignore[attr-defined]
    return cli


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: run the CLI, turning safework errors into one clear line and an exit code."""
    try:
        command = build_cli()
        command.main(args=argv, prog_name="safework", standalone_mode=False)
    except SafeworkError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
