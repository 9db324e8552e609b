"""``safework verifiers train safety|value``: (re)train a neural verifier head, show held-out figures."""

from __future__ import annotations

from typing import Any

import click

from safework.verifiers.neural.training import PRINCIPLES, TrainConfig, load_or_train


def _rows(metadata: dict[str, Any]) -> list[list[str]]:
    rows = []
    for split in ("heldout", "harmbench"):
        figures = metadata["metrics"][split]
        keyword = figures.get("keyword", {})
        rows.append(
            [
                split,
                str(figures["n_exact"]),
                f"{figures['accuracy']:.3f}",
                f"{figures['macro_f1']:.3f}",
                f"{figures['set_accuracy']:.3f} (n={figures['n_partial']})",
                f"{keyword['accuracy']:.3f}" if keyword else "-",
            ]
        )
    return rows


@click.command("train")
@click.argument("name", type=click.Choice(PRINCIPLES))
@click.option("--seed", default=0, show_default=True, help="Seed of the split, templates and head init.")
@click.option("--force", is_flag=True, help="Retrain even when cached weights exist for this version.")
@click.option("--json", "as_json", is_flag=True, help="Print the training metadata as JSON on stdout.")
def train_command(name: str, seed: int, force: bool, as_json: bool) -> None:
    """Train the NAME verifier head (safety or value) on registry data; weights are cached."""
    from safework.core.console import print_json, print_table

    trained = load_or_train(name, TrainConfig(seed=seed), force=force)
    metadata = trained.metadata
    if as_json:
        print_json({**metadata, "path": str(trained.path), "retrained": trained.retrained})
        return
    state = "trained now" if trained.retrained else "cached"
    print_table(
        f"{name} verifier ({state}, seed {metadata['seed']}, data {metadata['data_hash'][:12]})",
        ["split", "n exact", "accuracy", "macro-F1", "set accuracy", "keyword acc"],
        _rows(metadata),
    )
    click.echo(f"weights: {trained.path}  (training took {metadata['seconds']['total']} s)")
