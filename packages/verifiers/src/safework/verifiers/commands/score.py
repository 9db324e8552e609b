"""``safework verifiers score``: score a JSONL file locally with one verifier or a whole reward recipe.

Each input line is a JSON object with ``prompt`` and ``response`` (strings), optional ``reference`` (a
string, or a list of gold aliases), ``metadata`` (an object) and ``task_label`` (recipes only). Every bad
line is reported with its line number before anything is scored, so a long file is not half-scored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from safework.core.cli import read_jsonl_lines
from safework.core.console import print_json, print_table
from safework.core.errors import ConfigError, SafeworkError
from safework.verifiers.base import VerifierInputError, VerifierItem

MAX_REPORTED_ERRORS = 10


def _item_from(obj: Any) -> tuple[VerifierItem, str | None]:
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    missing = [key for key in ("prompt", "response") if key not in obj]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}; each line needs prompt and response")
    for key in ("prompt", "response"):
        if not isinstance(obj[key], str):
            raise ValueError(f"field {key!r} must be a string")
    metadata = obj.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ValueError("field 'metadata' must be an object")
    metadata = dict(metadata)
    reference = obj.get("reference")
    if isinstance(reference, list):
        if not reference or not all(isinstance(x, str) for x in reference):
            raise ValueError("field 'reference' must be a string or a non-empty list of strings")
        metadata.setdefault("answers", list(reference))
        reference = reference[0]
    elif reference is not None and not isinstance(reference, str):
        raise ValueError("field 'reference' must be a string or a list of strings")
    task_label = obj.get("task_label")
    if task_label is not None and not isinstance(task_label, str):
        raise ValueError("field 'task_label' must be a string")
    if task_label is not None:
        metadata["task_label"] = task_label
    return VerifierItem(obj["prompt"], obj["response"], reference, metadata), task_label


def read_items(path: Path) -> list[tuple[int, VerifierItem]]:
    """(line number, item) for every non-blank line; all bad lines are reported in one error."""
    try:
        return read_jsonl_lines(
            path,
            lambda obj: _item_from(obj)[0],
            example='{"prompt": "...", "response": "...", "reference": "..."}',
            action="scored",
        )
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}: write KEY=VALUE (VALUE as JSON, or a plain string)")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _batches(seq: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


@click.command("score")
@click.option("--verifier", "verifier_name", help="Registered verifier name (see `safework verifiers list`).")
@click.option(
    "--recipe",
    "recipe_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Score with a reward recipe (TOML) instead: total + per-component breakdown.",
)
@click.option(
    "--jsonl",
    "jsonl",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Input: one JSON object per line.",
)
@click.option(
    "--option",
    "options",
    multiple=True,
    help="Verifier option KEY=VALUE (repeatable), e.g. preset=llama-guard.",
)
@click.option("--task-label", default=None, help="Task label for lines without one (recipes).")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per input line.")
def score_command(
    verifier_name: str | None,
    recipe_path: Path | None,
    jsonl: Path,
    options: tuple[str, ...],
    task_label: str | None,
    batch_size: int,
    as_json: bool,
) -> None:
    """Score a JSONL file of (prompt, response[, reference]) with a verifier or a reward recipe."""
    if (verifier_name is None) == (recipe_path is None):
        raise click.UsageError("pass exactly one of --verifier NAME or --recipe FILE")
    numbered = read_items(jsonl)
    try:
        if recipe_path is not None:
            _score_recipe(recipe_path, numbered, task_label, batch_size, as_json)
        else:
            assert verifier_name is not None
            _score_verifier(verifier_name, _parse_options(options), numbered, batch_size, as_json)
    except (SafeworkError, VerifierInputError) as exc:
        raise click.ClickException(str(exc)) from exc


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _score_verifier(
    name: str,
    options: dict[str, Any],
    numbered: list[tuple[int, VerifierItem]],
    batch_size: int,
    as_json: bool,
) -> None:
    from safework.verifiers.registry import get_verifier

    verifier = get_verifier(name, **options)
    problems = []
    for number, item in numbered:  # per line, so the error names the line, not a batch index
        try:
            verifier.validate([item])
        except VerifierInputError as exc:
            problems.append(f"line {number}: {str(exc).removeprefix('item 0: ')}")
    if problems:
        raise click.ClickException(
            f"{len(problems)} line(s) cannot be scored by {name!r}:\n"
            + "\n".join(problems[:MAX_REPORTED_ERRORS])
        )
    rows = []
    for batch in _batches(numbered, batch_size):
        scores = verifier([item for _, item in batch])
        for (number, _), score in zip(batch, scores, strict=True):
            if as_json:
                print_json(
                    {
                        "line": number,
                        "verifier": name,
                        "principle": score.principle,
                        "label": score.label,
                        "score": score.score,
                        "categories": list(score.categories),
                        "raw": _jsonable(score.raw),
                    }
                )
            rows.append((number, score.label, f"{score.score:.4f}", ",".join(score.categories)))
    if not as_json:
        print_table(f"{name} scores for {len(rows)} lines", ["line", "label", "score", "categories"], rows)


def _score_recipe(
    path: Path,
    numbered: list[tuple[int, VerifierItem]],
    default_label: str | None,
    batch_size: int,
    as_json: bool,
) -> None:
    """Totals come from the recipe's ``compose`` (as on the reward server); a line whose verifier failed
    is printed without a total and makes the command fail after every line is shown."""
    from safework.verifiers.recipe import Recipe, RecipeScorer, task_label_of

    scorer = RecipeScorer(Recipe.load(path))
    rows = []
    failed = []
    for batch in _batches(numbered, batch_size):
        items = [item for _, item in batch]
        labels = [task_label_of(item) or (default_label or "") for item in items]
        for (number, _), result in zip(batch, scorer.score(items, labels), strict=True):
            if result.error is not None:
                failed.append(f"line {number}: {result.error.message}")
            if as_json:
                print_json(
                    {"line": number, **result.as_dict(), "label": result.task_label, "score": result.total}
                )
            parts = ", ".join(
                f"{n}={result.scores[n]:.3f}x{w:g}" if n in result.scores else f"{n}=failed"
                for n, w in result.weights.items()
            )
            fmt = "-" if result.format_score is None else f"{result.format_score:.0f}"
            total = "failed" if result.total is None else f"{result.total:.4f}"
            rows.append((number, result.task_label or "-", total, f"{fmt}x{result.format_weight:g}", parts))
    if not as_json:
        print_table(f"recipe {path.name}", ["line", "task label", "total", "format", "components"], rows)
    if failed:
        raise click.ClickException(
            f"{len(failed)} line(s) got no reward:\n" + "\n".join(failed[:MAX_REPORTED_ERRORS])
        )
