"""Reward recipe semantics (spec §4): format always added, unknown labels, missing verifiers, overrides."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from safework.core.errors import ConfigError
from safework.verifiers import VerifierItem
from safework.verifiers.knowledge import KnowledgeVerifier
from safework.verifiers.recipe import DEFAULT_RECIPE_PATH, Recipe, RecipeScorer

DEFAULT = DEFAULT_RECIPE_PATH


GOOD_FORMAT = "<think>Let me think.</think> "


def _scorer(recipe: Recipe) -> RecipeScorer:
    # the lexical knowledge verifier keeps these tests model-free; the semantic one is tested elsewhere
    return RecipeScorer(recipe, verifiers={"knowledge": KnowledgeVerifier(semantic=False)})


def test_default_recipe_loads_and_names_the_spec_labels() -> None:
    recipe = Recipe.load(DEFAULT)
    assert {
        "safety",
        "value",
        "knowledge",
        "knowledge_rule",
        "general",
        "general_rule",
        "normal",
        "muldimif",
    } <= set(recipe.labels)
    assert recipe.labels["gsm8k_rule"].format_weight == pytest.approx(0.1)
    assert [(c.verifier, c.weight) for c in recipe.labels["knowledge"].components] == [
        ("knowledge", 1.0),
        ("normal", 1.0),
    ]


def test_knowledge_reward_is_format_plus_components_with_missing_judge_as_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scorer = _scorer(Recipe.load(DEFAULT))
    items = [
        VerifierItem(
            "Capital of France?",
            GOOD_FORMAT + "Paris",
            reference="Paris",
            metadata={"task_label": "knowledge"},
        ),
        VerifierItem("Capital of France?", "Berlin", reference="Paris", metadata={"task_label": "knowledge"}),
    ]
    with caplog.at_level(logging.WARNING, logger="safework.verifiers.recipe"):
        right, wrong = scorer.score(items)
    # r = r_format + knowledge + normal, and `normal` is not installed → contributes 1.0 (spec §4)
    assert right.total == pytest.approx(1.0 + 1.0 + 1.0)
    assert wrong.total == pytest.approx(0.0 + 0.0 + 1.0)
    assert right.missing == ("normal",) and right.scores["normal"] == 1.0
    assert any("'normal' is not installed" in r.getMessage() for r in caplog.records)


def test_unknown_label_gets_format_only_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    scorer = _scorer(Recipe.load(DEFAULT))
    items = [VerifierItem("q", GOOD_FORMAT + "answer", metadata={"task_label": "poetry"})] * 3
    with caplog.at_level(logging.WARNING, logger="safework.verifiers.recipe"):
        results = scorer.score(items) + scorer.score(items)
    assert all(r.total == 1.0 and not r.known_label and not r.scores for r in results)
    assert sum("'poetry' has no recipe" in r.getMessage() for r in caplog.records) == 1


def test_gsm8k_override_is_point_nine_accuracy_plus_point_one_boxed_format() -> None:
    scorer = _scorer(Recipe.load(DEFAULT))
    meta = {"task_label": "gsm8k_rule"}
    items = [
        VerifierItem("6*7?", "<think>6*7</think> \\boxed{42}", reference="42", metadata=meta),
        VerifierItem("6*7?", "<think>6*7</think> 42", reference="42", metadata=meta),  # right, but no box
        VerifierItem("6*7?", "\\boxed{42}", reference="42", metadata=meta),  # right, no think block
        VerifierItem("6*7?", "<think>6*7</think> \\boxed{41}", reference="42", metadata=meta),
    ]
    assert [round(r.total, 6) for r in scorer.score(items)] == [1.0, 0.9, 0.9, 0.1]


def test_weight_matrix_and_format_rewards_reproduce_the_totals() -> None:
    import torch

    recipe = Recipe.load(DEFAULT)
    scorer = _scorer(recipe)
    items = [
        VerifierItem(
            "6*7?", "<think>6*7</think> \\boxed{42}", reference="42", metadata={"task_label": "gsm8k_rule"}
        ),
        VerifierItem(
            "Capital?", GOOD_FORMAT + "Paris", reference="Paris", metadata={"task_label": "knowledge"}
        ),
        VerifierItem("6*7?", "<think>x</think> 41", reference="42", metadata={"task_label": "general_rule"}),
        VerifierItem("q", GOOD_FORMAT + "hi", metadata={"task_label": "unknown-label"}),
    ]
    labels = [str(item.metadata["task_label"]) for item in items]
    names = recipe.verifier_names()
    weights = recipe.weight_matrix(labels, names)
    assert weights.shape == (4, len(names)) and weights.dtype == torch.float32
    assert weights[0, names.index("math-answer")] == pytest.approx(0.9) and weights[3].abs().sum() == 0
    breakdowns = scorer.score(items)
    scores = torch.ones((len(items), len(names)))  # not loaded / not used → 1.0 (weights are 0 when unused)
    for i, b in enumerate(breakdowns):
        for name, value in b.scores.items():
            scores[i, names.index(name)] = value
    totals = scorer.format_rewards(items) + (weights * scores).sum(-1)
    assert totals.tolist() == pytest.approx([b.total for b in breakdowns])
    assert recipe.format_weights(labels).tolist() == pytest.approx([0.1, 1.0, 1.0, 1.0])


def test_explicit_labels_override_metadata() -> None:
    scorer = _scorer(Recipe.load(DEFAULT))
    item = VerifierItem("6*7?", "<think>x</think> 42", reference="42", metadata={"task_label": "poetry"})
    [result] = scorer.score([item], task_labels=["general_rule"])
    assert result.task_label == "general_rule" and result.total == 2.0
    with pytest.raises(ConfigError, match="task labels"):
        scorer.score([item], task_labels=[])


# -- validation at load time ---------------------------------------------------------------------------
def test_unknown_verifier_is_an_error_unless_optional() -> None:
    with pytest.raises(ConfigError, match=r"unknown verifier 'helpfulness'.*optional = true"):
        Recipe.loads('[labels.x]\ncomponents = [{ verifier = "helpfulness", weight = 1.0 }]')
    recipe = Recipe.loads(
        '[labels.x]\ncomponents = [{ verifier = "helpfulness", weight = 1.0, optional = true }]'
    )
    assert not recipe.is_loaded("helpfulness")


@pytest.mark.parametrize(
    ("weight", "message"),
    [("inf", "finite"), ("nan", "finite"), ('"1"', "finite"), ("true", "finite")],
)
def test_weights_must_be_finite_numbers(weight: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Recipe.loads(f'[labels.x]\ncomponents = [{{ verifier = "format", weight = {weight} }}]')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[labels.x\n", "not valid TOML"),
        ("[rewards.x]\n", "unknown top-level keys"),
        ('[labels.x]\nformats = "format"\n', "takes only"),
        ('[labels.x]\ncomponents = [{ name = "format" }]\n', "component 0"),
        ('[labels.x]\nformat = "nope"\n', "format verifier 'nope'"),
        ('[verifiers.boxed]\nfactory = "nope"\n', "unknown verifier 'nope'"),
        (
            '[labels.x]\ncomponents = [{ verifier = "format" }, { verifier = "format", weight = 2 }]\n',
            "appears twice",
        ),
    ],
)
def test_malformed_recipes_are_rejected_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Recipe.loads(text)


def test_named_verifier_instances_take_options() -> None:
    recipe = Recipe.loads(
        '[verifiers.short]\nfactory = "length"\n'
        'options = { budget = 3, unit = "chars", part = "answer", penalty = "hard" }\n'
        '[labels.brief]\ncomponents = [{ verifier = "short", weight = 0.5 }]\n'
    )
    scorer = RecipeScorer(recipe)
    ok, long = scorer.score(
        [VerifierItem("q", "<think>t</think>a"), VerifierItem("q", "<think>t</think>abcdef")],
        ["brief", "brief"],
    )
    assert ok.total == pytest.approx(1.5) and long.total == pytest.approx(1.0)


def test_missing_recipe_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read recipe"):
        Recipe.load(tmp_path / "absent.toml")


def test_reward_server_maps_task_labels_from_the_same_recipe() -> None:
    from safework.verifiers.server import default_recipes

    assert default_recipes() == Recipe.load(DEFAULT).label_verifiers()
    assert default_recipes()["knowledge_rule"] == ("math-answer", "normal")
