"""``safework verifiers train safety|value|normal``: (re)train a neural verifier head, show its figures."""

from __future__ import annotations

from typing import Any

import click

from safework.verifiers.neural.training import PRINCIPLES, TrainConfig, load_or_train


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _rows(metadata: dict[str, Any]) -> list[list[str]]:
    """One row per figure of the realistic evaluation set, each beside its trivial baseline."""
    figures = metadata["metrics"]["heldout"]
    keyword = figures.get("keyword", {})
    groups = figures["groups"]
    rows = [
        [
            "accuracy (exact labels)",
            _fmt(figures["accuracy"]),
            f"majority '{figures['majority_label']}' {_fmt(figures['majority_accuracy'])}",
            _fmt(keyword.get("accuracy", "-")),
        ],
        ["macro-F1 (exact labels)", _fmt(figures["macro_f1"]), "-", _fmt(keyword.get("macro_f1", "-"))],
        [
            "balanced accuracy over groups",
            _fmt(groups["balanced_accuracy"]),
            f"constant '{groups['best_constant_label']}' {_fmt(groups['best_constant'])}",
            _fmt(keyword.get("groups", {}).get("balanced_accuracy", "-")),
        ],
    ]
    kw_groups = keyword.get("groups", {}).get("per_group", {})
    for name, group in groups["per_group"].items():
        kw = kw_groups.get(name, {}).get("accuracy", "-")
        rows.append([f"  {name} (n={group['n']})", _fmt(group["accuracy"]), "-", _fmt(kw)])
    human = figures.get("human_binary")
    if human and human.get("n"):
        rows.append(
            [
                f"human-labelled unsafe vs not (n={human['n']})",
                _fmt(human["balanced_accuracy"]),
                f"majority {_fmt(human['majority_accuracy'])}",
                _fmt(keyword.get("human_binary", {}).get("balanced_accuracy", "-")),
            ]
        )
    return rows


@click.command("train")
@click.argument("name", type=click.Choice(PRINCIPLES))
@click.option("--seed", default=0, show_default=True, help="Seed of the split, templates and head init.")
@click.option("--force", is_flag=True, help="Retrain even when cached weights exist for this version.")
@click.option("--json", "as_json", is_flag=True, help="Print the training metadata as JSON on stdout.")
def train_command(name: str, seed: int, force: bool, as_json: bool) -> None:
    """Train the NAME verifier head (safety, value or normal) on registry data; weights are cached."""
    from safework.core.console import print_json, print_table

    trained = load_or_train(name, TrainConfig(seed=seed), force=force)
    metadata = trained.metadata
    if as_json:
        print_json({**metadata, "path": str(trained.path), "retrained": trained.retrained})
        return
    state = "trained now" if trained.retrained else "cached"
    print_table(
        f"{name} verifier ({state}, seed {metadata['seed']}, data {metadata['data_hash'][:12]})",
        ["realistic held-out figure", "head", "trivial baseline", "keyword rule"],
        _rows(metadata),
    )
    click.echo(f"weights: {trained.path}  (training took {metadata['seconds']['total']} s)")
