"""Reward recipe semantics (spec §4): format always added, unknown labels, missing verifiers, overrides."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from safework.core.errors import ConfigError
from safework.core.types import VerifierScore
from safework.verifiers import Verifier, VerifierItem, available_verifiers
from safework.verifiers.failure import ScoreError
from safework.verifiers.knowledge import KnowledgeVerifier
from safework.verifiers.recipe import DEFAULT_RECIPE_PATH, LabelRecipe, Recipe, RecipeScorer, compose

DEFAULT = DEFAULT_RECIPE_PATH


GOOD_FORMAT = "<think>Let me think.</think> "


def _model_free() -> Recipe:
    """The default recipe as if the model-based judges were not installed: they count 1.0 (spec §4)."""
    return Recipe.load(
        DEFAULT, available=[n for n in available_verifiers() if n not in ("normal", "general")]
    )


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
    scorer = _scorer(_model_free())
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
    scorer = _scorer(_model_free())
    items = [VerifierItem("q", GOOD_FORMAT + "answer", metadata={"task_label": "poetry"})] * 3
    with caplog.at_level(logging.WARNING, logger="safework.verifiers.recipe"):
        results = scorer.score(items) + scorer.score(items)
    assert all(r.total == 1.0 and not r.known_label and not r.scores for r in results)
    assert sum("'poetry' has no recipe" in r.getMessage() for r in caplog.records) == 1


def test_gsm8k_override_is_point_nine_accuracy_plus_point_one_boxed_format() -> None:
    scorer = _scorer(_model_free())
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

    recipe = _model_free()
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
    scorer = _scorer(_model_free())
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


def test_reward_server_composes_with_the_package_default_recipe() -> None:
    from safework.verifiers.server import ServerConfig, VerifierService

    service = VerifierService({}, ServerConfig())
    try:
        assert service.recipe.source == str(DEFAULT) and service.recipe.labels == Recipe.load(DEFAULT).labels
    finally:
        service.close()


# -- the one composition function -------------------------------------------------------------------------
def test_compose_counts_a_missing_optional_component_as_one_and_fails_on_a_required_one() -> None:
    recipe = Recipe.load(DEFAULT)
    got = recipe.compose("knowledge", {"format": 1.0, "knowledge": 0.5})
    assert got.total == pytest.approx(2.5) and got.missing == ("normal",) and got.error is None
    lacking = recipe.compose("knowledge", {"format": 1.0})  # `knowledge` is required
    assert lacking.total is None and lacking.error is not None
    assert lacking.error.code == "VERIFIER_NOT_FOUND" and "'knowledge'" in lacking.error.message
    assert lacking.scores == {"normal": 1.0} and lacking.weights == {"knowledge": 1.0, "normal": 1.0}


def test_compose_never_counts_a_failed_component() -> None:
    recipe = Recipe.load(DEFAULT)
    late = ScoreError("DEADLINE_EXCEEDED", "ran late", retryable=True)
    got = recipe.compose("gsm8k_rule", {"format-boxed": 1.0, "math-answer": late})
    assert got.total is None and got.format_score == 1.0 and got.scores == {}
    assert got.error == ScoreError(
        "DEADLINE_EXCEEDED", "no reward for task label 'gsm8k_rule': math-answer: ran late", True
    )
    broken = recipe.compose("safety", {"format": ScoreError("VERIFIER_FAILED", "boom"), "safety": 0.5})
    assert broken.total is None and broken.format_score is None and broken.error is not None
    assert not broken.error.retryable and "format: boom" in broken.error.message


def test_compose_of_a_weighted_sum_has_no_format_term() -> None:
    adhoc = LabelRecipe.weighted_sum({"a": 2.0, "b": 0.5})
    assert compose("x", adhoc, None, {"a": 0.25, "b": 1.0}).total == pytest.approx(1.0)
    with pytest.raises(ValueError, match="format score is needed"):
        compose("x", Recipe.load(DEFAULT).labels["safety"], None, {"safety": 1.0})


def test_local_failures_stay_per_item() -> None:
    class Picky(Verifier):
        principle = "picky"
        labels = ("ok",)

        def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
            if any("BAD" in item.response for item in items):
                raise ValueError("cannot parse")
            return [VerifierScore("picky", "ok", 0.5) for _ in items]

    recipe = Recipe.loads('[labels.p]\ncomponents = [{ verifier = "picky", weight = 2.0, optional = true }]')
    scorer = RecipeScorer(recipe, verifiers={"picky": Picky()})
    good, bad = scorer.score(
        [VerifierItem("q", GOOD_FORMAT + "fine"), VerifierItem("q", GOOD_FORMAT + "BAD")], ["p", "p"]
    )
    assert good.total == pytest.approx(2.0) and good.error is None
    assert bad.total is None and bad.error is not None and bad.error.code == "VERIFIER_FAILED"
    assert "the picky verifier raised ValueError: cannot parse" in bad.error.message
    [unref] = scorer_for_knowledge().score([VerifierItem("q", GOOD_FORMAT + "x")], ["knowledge"])
    assert unref.total is None and unref.error is not None and unref.error.code == "INVALID_ITEM"
    assert unref.error.message.startswith("no reward for task label 'knowledge': knowledge: item 0")


def scorer_for_knowledge() -> RecipeScorer:
    return _scorer(_model_free())
