"""The ``safework`` command. Core adds ``plugins``; everything else arrives through ``register_commands``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

import click

from safework.core.console import err_console, print_json, print_table
from safework.core.errors import ConfigError, SafeworkError
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


# -- helpers for package commands -------------------------------------------------------------------------
MAX_REPORTED_LINES = 10
T = TypeVar("T")


def _json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"a JSON {type(value).__name__}, not an object")
    return value


def read_jsonl_lines(
    path: Path,
    parse: Callable[[Any], T],
    *,
    example: str = '{"prompt": "..."}',
    action: str = "read",
) -> list[tuple[int, T]]:
    """``(line number, parse(value))`` for every non-blank line of a JSONL file; all bad lines in one error.

    ``parse`` gets each line's JSON value and raises ValueError to mark the line bad (its message follows
    ``line N: ``), so a caller's own field checks are reported together with invalid JSON. Raises
    ConfigError naming the file, each bad line (up to ten), that nothing was ``action`` and the expected
    shape (``example``), or saying the file is missing, not UTF-8 or empty, so a command never runs on half
    of its input.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(
            f"{path} does not exist; pass the path of a JSONL file (one {example} per line)"
        ) from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not a UTF-8 text file ({exc}); pass a JSONL file") from None
    records: list[tuple[int, T]] = []
    errors: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append((number, parse(json.loads(line))))
        except json.JSONDecodeError as exc:
            errors.append(f"line {number}: invalid JSON ({exc.msg} at column {exc.colno})")
        except ValueError as exc:
            errors.append(f"line {number}: {exc}")
    if errors:
        shown = errors[:MAX_REPORTED_LINES]
        more = f"; and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        raise ConfigError(
            f"{path}: {len(errors)} bad line(s), nothing {action}: "
            + "; ".join(shown)
            + more
            + f". Fix: write one JSON object per line, like {example}"
        )
    if not records:
        raise ConfigError(
            f"{path} is empty (it holds no items); write one JSON object per line, like {example}"
        )
    return records


def read_jsonl(path: Path, *, example: str = '{"prompt": "..."}') -> list[dict[str, Any]]:
    """Every non-blank line of a JSONL file as a JSON object (see ``read_jsonl_lines`` for the errors)."""
    return [record for _, record in read_jsonl_lines(path, _json_object, example=example)]


def split_choices(text: str, choices: Sequence[str], option: str) -> list[str]:
    """A comma-separated option value checked against ``choices`` (order kept, repeats dropped)."""
    picked = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [part for part in picked if part not in choices]
    if unknown or not picked:
        raise ConfigError(
            f"{option} {text!r}: unknown {', '.join(map(repr, unknown)) or 'empty value'}; "
            f"choose from {', '.join(choices)} (comma-separated)"
        )
    return list(dict.fromkeys(picked))


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
