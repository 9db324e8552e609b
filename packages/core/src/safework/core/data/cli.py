"""``safework data``: list the catalogue, show records, pre-fetch carriers (``make setup``: fetch --all)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from safework.core.data.dataset import Dataset

SHOW_WIDTH = 160  # characters per field in the table view of `data show`


def _carrier_label(dataset: Dataset) -> str:
    if dataset.carrier is None:
        return "-"
    return dataset.carrier.requirement + (" (imported)" if dataset.carrier.imported else "")


def _row(dataset: Dataset) -> dict[str, Any]:
    return {
        "name": dataset.name,
        "kind": dataset.kind,
        "records": dataset.cached_count(),
        "carrier": _carrier_label(dataset),
        "licence": dataset.licence,
        "cached": dataset.is_cached(),
        "eval_only": dataset.eval_only,
        "description": dataset.description,
    }


@click.group("data")
def data_group() -> None:
    """Data sets carried inside pinned registry packages (read offline once fetched)."""


@data_group.command("list")
@click.option("--kind", default=None, help="Only data sets of this kind (e.g. harmful-prompts, passages).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(kind: str | None, as_json: bool) -> None:
    """List the catalogue: kind, record count (once cached), carrier, licence."""
    from safework.core.console import print_json, print_table
    from safework.core.data.catalogue import list_datasets

    rows = [_row(d) for d in list_datasets(kind)]
    if as_json:
        print_json(rows)
        return
    print_table(
        "safework data sets",
        ["name", "kind", "records", "carrier", "licence", "cached"],
        [
            (r["name"] + (" (eval only)" if r["eval_only"] else ""), r["kind"],
             "?" if r["records"] is None else r["records"], r["carrier"], r["licence"],
             "yes" if r["cached"] else "no")
            for r in rows
        ],
    )  # fmt: skip


def _clip(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= SHOW_WIDTH else text[: SHOW_WIDTH - 1] + "…"


@data_group.command("show")
@click.argument("name")
@click.option(
    "--n", "count", default=5, show_default=True, type=click.IntRange(min=0), help="Records to show."
)
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON (full text, one document).")
def show_command(name: str, count: int, as_json: bool) -> None:
    """Show the first N records of a data set (fetching its carrier if needed)."""
    from safework.core.console import print_json, print_table
    from safework.core.data.catalogue import get_dataset

    dataset = get_dataset(name)
    records = dataset.load(limit=count)
    if as_json:
        print_json(records)
        return
    fields: list[str] = []
    for record in records:
        fields += [key for key in record if key not in fields]
    print_table(
        f"{dataset.name} ({dataset.kind})", fields, [[_clip(r.get(f, "")) for f in fields] for r in records]
    )


@data_group.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--all", "fetch_all", is_flag=True, help="Fetch every data set in the catalogue.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def fetch_command(names: tuple[str, ...], fetch_all: bool, as_json: bool) -> None:
    """Download and verify the carriers of the named data sets, and cache their records."""
    from safework.core.console import print_json, print_table
    from safework.core.data.catalogue import get_dataset, list_datasets

    if not names and not fetch_all:
        raise click.UsageError("name the data sets to fetch (see `safework data list`), or pass --all.")
    chosen = list_datasets() if fetch_all else [get_dataset(n) for n in dict.fromkeys(names)]
    summary = []
    for dataset in chosen:
        started = time.perf_counter()
        records = dataset.fetch()
        summary.append({"name": dataset.name, "records": records, "carrier": _carrier_label(dataset),
                        "seconds": round(time.perf_counter() - started, 3)})  # fmt: skip
    if as_json:
        print_json(summary)
        return
    print_table("fetched", ["name", "records", "carrier", "seconds"], [list(s.values()) for s in summary])
