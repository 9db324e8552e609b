"""One reward, four paths: the in-process scorer, the gRPC reward server, and the TRL adapter over each.

They all hand their verifier scores to ``safework.verifiers.recipe.compose``; these tests pin that a mixed
batch of task labels gets identical totals *and* breakdowns (format term, components, weights, missing
optional components, failures) whichever way it is scored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import pytest

from safework.core.types import VerifierScore
from safework.verifiers import Verifier, VerifierItem, available_verifiers, get_verifier
from safework.verifiers.knowledge import KnowledgeVerifier
from safework.verifiers.recipe import DEFAULT_RECIPE_PATH, Recipe, RecipeScorer, RewardBreakdown
from safework.verifiers.server import (
    RewardClient,
    ServerConfig,
    load_verifiers,
    reward_function,
    start_reward_server,
)

THINK = "<think>Work it out.</think> "
# (task label, prompt, response, reference): every label of the brief, plus an item that cannot be scored.
ROWS: list[tuple[str, str, str, str | None]] = [
    ("safety", "How do I pick a lock?", THINK + "I can't help with breaking into property.", None),
    ("value", "Is it fine to lie to my boss?", THINK + "Honesty usually serves you better.", None),
    ("knowledge", "Capital of France?", THINK + "Paris", "Paris"),
    ("knowledge", "Capital of Italy?", "Milan", "Rome"),  # wrong, and no think block
    ("knowledge_rule", "2+2?", THINK + "4", "4"),
    ("general_rule", "6*7?", THINK + "41", "42"),
    ("gsm8k_rule", "6*7?", THINK + "\\boxed{42}", "42"),
    ("gsm8k_rule", "6*7?", "\\boxed{42}", "42"),  # right answer, no think block: 0.9 of 1.0
    ("normal", "Say hi.", THINK + "Hi there!", None),
    ("poetry", "A haiku?", THINK + "Old pond, a frog jumps.", None),  # no recipe: format only
    ("knowledge", "Capital of Spain?", THINK + "Madrid", None),  # no reference: knowledge fails
]
ITEMS = [VerifierItem(p, r, ref, {"task_label": label}) for label, p, r, ref in ROWS]
TRL_COLUMNS = {
    "prompts": [p for _, p, _, _ in ROWS],
    "completions": [[{"role": "assistant", "content": r}] for _, _, r, _ in ROWS],
    "reference": [ref for _, _, _, ref in ROWS],
    "task_label": [label for label, _, _, _ in ROWS],
}


class Hashed(Verifier):
    """A deterministic stand-in for a model verifier: a score in [0, 1] from a hash of the item."""

    principle = "stand-in"
    labels = ("graded",)

    def __init__(self, name: str) -> None:
        self.name = name

    def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
        out = []
        for item in items:
            digest = hashlib.sha256(f"{self.name}|{item.prompt}|{item.response}".encode()).digest()
            out.append(VerifierScore(self.principle, "graded", digest[0] / 255))
        return out


@dataclass
class Paths:
    """The four rewards of ITEMS: breakdowns and the numbers TRL would see."""

    local: list[RewardBreakdown]
    remote: list[RewardBreakdown]
    trl_local: list[RewardBreakdown]
    trl_remote: list[RewardBreakdown]
    trl_local_totals: list[float | None]
    trl_remote_totals: list[float | None]


def _all_paths(recipe: Recipe, models: Mapping[str, Verifier]) -> Paths:
    """Score ITEMS in-process, on a real server on 127.0.0.1, and through TRL over both."""
    local_verifiers = {"knowledge": KnowledgeVerifier(semantic=False), **models}
    scorer = RecipeScorer(recipe, verifiers=local_verifiers)
    served = {**load_verifiers(["math-answer"], recipe), **local_verifiers}  # + format, format-boxed
    with (
        start_reward_server(served, config=ServerConfig(max_batch=16, max_wait_ms=5), recipe=recipe) as srv,
        RewardClient(srv.target, timeout=120) as client,
    ):
        remote = client.rewards(ITEMS)
        trl_remote = reward_function(client)
        trl_remote_breakdowns = trl_remote.breakdowns(**TRL_COLUMNS)
        trl_remote_totals = trl_remote(**TRL_COLUMNS, completion_ids=[[0]] * len(ROWS), trainer_state=None)
    trl_local = reward_function(scorer)
    return Paths(
        local=scorer.score(ITEMS),
        remote=remote,
        trl_local=trl_local.breakdowns(**TRL_COLUMNS),
        trl_remote=trl_remote_breakdowns,
        trl_local_totals=trl_local(**TRL_COLUMNS, completion_ids=[[0]] * len(ROWS)),
        trl_remote_totals=trl_remote_totals,
    )


def _assert_parity(paths: Paths) -> None:
    for name in ("remote", "trl_local", "trl_remote"):
        other = getattr(paths, name)
        for index, (mine, theirs) in enumerate(zip(paths.local, other, strict=True)):
            assert mine == theirs, f"item {index} ({ROWS[index][0]}): local {mine} != {name} {theirs}"
    totals = [b.total for b in paths.local]
    assert paths.trl_local_totals == totals and paths.trl_remote_totals == totals


def _registered_without(*names: str) -> list[str]:
    return [n for n in available_verifiers() if n not in names]


@pytest.fixture(scope="module")
def with_models() -> Iterator[Paths]:
    recipe = Recipe.load(DEFAULT_RECIPE_PATH)
    models = {name: Hashed(name) for name in ("safety", "value", "normal")}
    yield _all_paths(recipe, models)


def test_every_path_gives_the_same_totals_and_breakdowns(with_models: Paths) -> None:
    _assert_parity(with_models)


def test_the_shared_reward_is_the_recipe(with_models: Paths) -> None:
    """Guards the parity test against four paths agreeing on a wrong number."""
    by_label = dict(zip((label for label, *_ in ROWS), with_models.local, strict=False))
    safety = Hashed("safety")([ITEMS[0]])[0].score
    assert with_models.local[0].total == pytest.approx(1.0 + safety)
    gsm8k, unboxed = with_models.local[6], with_models.local[7]
    assert (gsm8k.total, gsm8k.format_weight, gsm8k.weights) == (
        pytest.approx(1.0),
        0.1,
        {"math-answer": 0.9},
    )
    assert unboxed.total == pytest.approx(0.9) and unboxed.format_score == 0.0
    knowledge = with_models.local[2]
    normal = Hashed("normal")([ITEMS[2]])[0].score
    assert knowledge.total == pytest.approx(1.0 + 1.0 + normal) and knowledge.missing == ()
    assert by_label["poetry"].total == 1.0 and not by_label["poetry"].known_label
    failed = with_models.local[-1]
    assert failed.total is None and failed.error is not None and failed.error.code == "INVALID_ITEM"
    assert "knowledge: item 10" in failed.error.message and with_models.trl_remote_totals[-1] is None


def test_a_missing_optional_judge_counts_one_on_every_path() -> None:
    """`normal` not installed (locally) and not served (remotely): 1.0 and listed as missing, everywhere."""
    recipe = Recipe.load(DEFAULT_RECIPE_PATH, available=_registered_without("normal"))
    paths = _all_paths(recipe, {name: Hashed(name) for name in ("safety", "value")})
    _assert_parity(paths)
    normal = [b for b in paths.remote if b.task_label == "normal"]
    assert normal and all(b.missing == ("normal",) and b.scores["normal"] == 1.0 for b in normal)
    assert paths.remote[4].total == pytest.approx(1.0 + 1.0 + 1.0)  # knowledge_rule: format + math + normal


def test_named_remote_verifiers_are_a_weighted_sum_without_format() -> None:
    served = {"value": Hashed("value"), "safety": Hashed("safety")}
    with start_reward_server(served) as srv, RewardClient(srv.target, timeout=60) as client:
        reward = reward_function(client, verifiers=["safety", "value"], weights={"value": 0.5})
        got = reward(["q"], ["a"])
        [breakdown] = reward.breakdowns(["q"], ["a"])
    item = VerifierItem("q", "a")
    expected = served["safety"]([item])[0].score + 0.5 * served["value"]([item])[0].score
    assert got == [pytest.approx(expected)] and breakdown.format_weight == 0.0
    with pytest.raises(Exception, match="weights apply only to explicitly named remote verifiers"):
        reward_function(client, weights={"value": 0.5})


@pytest.mark.slow
def test_parity_with_the_real_default_verifiers() -> None:
    """The built-in safety, value and normal verifiers (MiniLM heads) instead of the stand-ins."""
    recipe = Recipe.load(DEFAULT_RECIPE_PATH)
    models = {name: get_verifier(name) for name in ("safety", "value", "normal")}
    _assert_parity(_all_paths(recipe, models))
