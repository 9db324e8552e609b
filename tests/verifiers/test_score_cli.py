"""``safework verifiers score`` on real JSONL files, through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from safework.verifiers.commands.score import score_command
from safework.verifiers.recipe import DEFAULT_RECIPE_PATH

DEFAULT = DEFAULT_RECIPE_PATH


def _write(tmp_path: Path, lines: list[Any]) -> Path:
    path = tmp_path / "items.jsonl"
    path.write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8"
    )
    return path


def _run(*args: str) -> Result:
    return CliRunner().invoke(score_command, list(args))


def _json_lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


MATH = [
    {"prompt": "6*7?", "response": "<think>6 times 7</think> \\boxed{42}", "reference": "42"},
    {"prompt": "6*7?", "response": "<think>6 times 7</think> 41", "reference": "42"},
]


def test_scores_each_line_as_json(tmp_path: Path) -> None:
    result = _run("--verifier", "math-answer", "--jsonl", str(_write(tmp_path, MATH)), "--json")
    assert result.exit_code == 0, result.output
    rows = _json_lines(result)
    assert [(r["line"], r["label"], r["score"]) for r in rows] == [(1, "correct", 1.0), (2, "incorrect", 0.0)]
    assert rows[0]["raw"]["extracted"] == "42"


def test_table_output_and_verifier_options(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"prompt": "q", "response": "abcdef"}, {"prompt": "q", "response": "ab"}])
    result = _run(
        "--verifier", "length", "--jsonl", str(path), "--option", "budget=3", "--option", "unit=chars"
    )
    assert result.exit_code == 0, result.output
    assert "over" in result.stdout and "within" in result.stdout
    as_json = _json_lines(
        _run("--verifier", "length", "--jsonl", str(path), "--option", "budget=3", "--json")
    )
    assert [r["label"] for r in as_json] == ["within", "within"]  # default unit: rough tokens (1 each)


def test_reference_list_becomes_gold_aliases(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [{"prompt": "Largest US city?", "response": "The Big Apple", "reference": ["NYC", "Big Apple"]}],
    )
    result = _run("--verifier", "knowledge", "--jsonl", str(path), "--option", "semantic=false", "--json")
    assert result.exit_code == 0, result.output
    [row] = _json_lines(result)
    assert row["label"] == "true" and row["raw"]["components"]["gold"] == "Big Apple"


def test_bad_lines_are_all_reported_by_number_and_nothing_is_scored(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            MATH[0],
            '{"prompt": "broken", ',
            {"prompt": "no response"},
            "",
            {"prompt": "x", "response": 3},
            ["not", "an", "object"],
            {"prompt": "x", "response": "y", "reference": 7},
        ],
    )
    result = _run("--verifier", "math-answer", "--jsonl", str(path), "--json")
    assert result.exit_code != 0
    assert "5 bad line(s), nothing scored" in result.output
    assert "line 2: invalid JSON" in result.output
    assert "line 3: missing field(s) response" in result.output
    assert "line 5: field 'response' must be a string" in result.output
    assert "line 6: expected a JSON object" in result.output
    assert "line 7: field 'reference'" in result.output
    assert '"label"' not in result.stdout


def test_a_line_without_a_required_reference_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, [MATH[0], {"prompt": "6*7?", "response": "42"}])
    result = _run("--verifier", "math-answer", "--jsonl", str(path))
    assert result.exit_code != 0
    assert "line 2: the math verifier needs a gold reference" in result.output


def test_unknown_verifier_and_usage_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, MATH)
    unknown = _run("--verifier", "nope", "--jsonl", str(path))
    assert unknown.exit_code != 0 and "no verifier named 'nope'" in unknown.output
    both = _run("--verifier", "format", "--recipe", str(DEFAULT), "--jsonl", str(path))
    assert both.exit_code != 0 and "exactly one of" in both.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    assert "holds no items" in _run("--verifier", "format", "--jsonl", str(empty)).output


def test_recipe_scoring_gives_totals_and_breakdown(tmp_path: Path) -> None:
    lines = [
        {**MATH[0], "task_label": "gsm8k_rule"},
        {**MATH[1], "task_label": "general_rule"},
        {"prompt": "q", "response": "<think>t</think> hi"},
    ]
    path = _write(tmp_path, lines)
    recipe = tmp_path / "recipe.toml"  # the default plus a label whose judge is not installed (counts 1.0)
    recipe.write_text(
        DEFAULT.read_text(encoding="utf-8")
        + '\n[labels.chat]\ncomponents = [{ verifier = "chat-judge", weight = 1.0, optional = true }]\n',
        encoding="utf-8",
    )
    result = _run("--recipe", str(recipe), "--jsonl", str(path), "--task-label", "chat", "--json")
    assert result.exit_code == 0, result.output
    first, second, third = _json_lines(result)
    assert first["score"] == pytest.approx(1.0) and first["format"] == {"score": 1.0, "weight": 0.1}
    assert first["components"]["math-answer"] == {"score": 1.0, "weight": 0.9}
    assert second["label"] == "general_rule" and second["score"] == pytest.approx(1.0)
    assert (
        third["label"] == "chat"
        and third["missing"] == ["chat-judge"]
        and third["score"] == pytest.approx(2.0)
    )
    table = _run("--recipe", str(recipe), "--jsonl", str(path), "--task-label", "chat")
    assert table.exit_code == 0 and "math-answer=1.000x0.9" in table.stdout


def test_recipe_line_whose_verifier_fails_has_no_total_and_fails_the_command(tmp_path: Path) -> None:
    lines = [
        {**MATH[0], "task_label": "gsm8k_rule"},
        {"prompt": "6*7?", "response": "42", "task_label": "gsm8k_rule"},
    ]
    result = _run("--recipe", str(DEFAULT), "--jsonl", str(_write(tmp_path, lines)), "--json")
    assert result.exit_code != 0
    good, bad = _json_lines(result)
    assert good["score"] == pytest.approx(1.0) and good["error"] is None
    assert bad["score"] is None and bad["error"]["code"] == "INVALID_ITEM"
    assert (
        "1 line(s) got no reward" in result.output
        and "line 2: no reward for task label 'gsm8k_rule'" in result.output
    )
