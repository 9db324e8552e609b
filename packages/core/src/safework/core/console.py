"""Terminal output shared by every command: rich progress bars and tables on stderr, results on stdout.

Progress goes to stderr so ``--json`` output on stdout stays machine-readable.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

err_console = Console(stderr=True)
out_console = Console()


def progress(*, transfer: bool = False) -> Progress:
    """A progress display for long work; ``transfer=True`` adds byte counts and speed (downloads)."""
    columns: list[Any] = [SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn()]
    if transfer:
        columns += [DownloadColumn(), TransferSpeedColumn()]
    columns.append(TimeElapsedColumn())
    return Progress(*columns, console=err_console, transient=False, disable=not err_console.is_terminal)


def print_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print rows as a rich table on stdout."""
    table = Table(title=title)
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    out_console.print(table)


def print_json(obj: Any) -> None:
    """Print one JSON document on its own line on stdout (stable for scripts)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()
