"""Reward-gaming probes: the probe logic on deterministic fake verifiers, then the real recipe (slow).

The fake recipes show the probes are worth having: a reward that pays for safety keywords or for length is
caught, a reward that pays for the right answer is not. The slow test is the acceptance gate for the
default recipe and must not be loosened to pass; it names the label × policy pairs that fail.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence

import pytest

from safework.core import answer_format
from safework.core.types import VerifierScore
from safework.rl.evaluation import probes
from safework.rl.evaluation.probes import DEFAULT_POLICIES, ProbeCase, run_probes
from safework.verifiers.base import Verifier, VerifierItem
from safework.verifiers.recipe import Recipe, RecipeScorer


class FakeFormat(Verifier):
    """The spec's format rule through the shared splitter."""

    principle = "format"
    labels = ("ok", "bad")

    def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
        ok = [answer_format.well_formed(item.response) for item in items]
        return [VerifierScore("format", "ok" if o else "bad", float(o)) for o in ok]


class ExactAnswer(Verifier):
    """Sound: 1 only when the final answer is exactly the reference sentence."""

    principle = "exact"
    labels = ("right", "wrong")

    def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
        out = []
        for item in items:
            right = answer_format.final_answer(item.response) == f"The answer is {item.reference}."
            out.append(VerifierScore("exact", "right" if right else "wrong", float(right)))
        return out


class KeywordCount(Verifier):
    """Gameable: pays for safety words, whatever the answer says."""

    principle = "keywords"
    labels = ("safe", "unsafe")
    words = ("cannot", "warning", "safe", "sorry")

    def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
        out = []
        for item in items:
            text = answer_format.final_answer(item.response).lower()
            value = min(1.0, sum(text.count(w) for w in self.words) / 4)
            out.append(VerifierScore("keywords", "safe" if value >= 0.5 else "unsafe", value))
        return out


class Contains(Verifier):
    """Gameable by repetition: 1 when the reference occurs anywhere, plus a small bonus for length."""

    principle = "contains"
    labels = ("yes", "no")

    def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
        out = []
        for item in items:
            answer = answer_format.final_answer(item.response)
            hit = (item.reference or "\0") in answer
            value = min(1.0, 0.5 * hit + len(answer) / 2000) if hit else 0.0
            out.append(VerifierScore("contains", "yes" if hit else "no", value))
        return out


RECIPE = """
[labels.alpha]
components = [{ verifier = "exact", weight = 1.0 }]

[labels.beta]
components = [{ verifier = "exact", weight = 1.0 }]

[labels.gamed_keywords]
components = [{ verifier = "keywords", weight = 1.0 }]

[labels.gamed_length]
components = [{ verifier = "contains", weight = 1.0 }]

[labels.judge_missing]
components = [{ verifier = "not-installed", weight = 1.0, optional = true }]
"""


def _scorer() -> RecipeScorer:
    recipe = Recipe.loads(RECIPE, available=["format", "exact", "keywords", "contains"])
    return RecipeScorer(
        recipe,
        verifiers={
            "format": FakeFormat(),
            "exact": ExactAnswer(),
            "keywords": KeywordCount(),
            "contains": Contains(),
        },
    )


def _cases(label: str, n: int = 3, offset: int = 0) -> list[ProbeCase]:
    """Distinct answers per (label, offset), so an off-topic answer is never right by accident."""
    answers = ["Paris", "seven", "blue whale", "1969", "oxygen", "neon"][offset : offset + n]
    return [
        ProbeCase(
            label,
            f"Question {k + offset} about {label}?",
            f"I recall the fact asked for in question {k}: it is {answers[k]}.",
            f"The answer is {answers[k]}.",
            answers[k],
            {"query_type": "benign"},
            "fake",
        )
        for k in range(n)
    ]


def _case() -> ProbeCase:
    return _cases("alpha", 1)[0]


# -- the policies ------------------------------------------------------------------------------------------
def test_policies_produce_the_degenerate_shapes() -> None:
    cases = [*_cases("alpha", 2), *_cases("beta", 2, offset=3)]
    case = cases[0]
    out = {name: policy(case, cases, 0) for name, policy in DEFAULT_POLICIES.items()}
    assert out["empty"] == ""
    assert answer_format.well_formed(out["always_refuse"]) and "can't help" in out["always_refuse"]
    assert answer_format.split(out["format_only"]) == answer_format.SplitResponse("x", "x", closed=True)
    assert answer_format.final_answer(out["repeated"]).count(case.answer) == probes.REPEATS
    assert "warning" in answer_format.final_answer(out["keyword_stuffed"]).lower()
    assert out["off_topic"] == cases[2].good  # the next case with another label
    truncated = answer_format.split(out["truncated_answer"])
    assert truncated.think == case.think and case.answer.startswith(truncated.answer)
    assert len(truncated.answer.split()) < len(case.answer.split())
    assert answer_format.split(out["truncated_think"]).truncated


def test_format_only_keeps_a_boxed_answer_boxed() -> None:
    boxed = ProbeCase("gsm8k_rule", "2+2?", "Add them.", "The answer is \\boxed{4}.", "4")
    assert answer_format.final_answer(probes.format_only(boxed, [boxed], 0)) == "\\boxed{x}"


def test_off_topic_falls_back_to_another_prompt_of_the_same_label() -> None:
    cases = _cases("alpha", 2)
    assert probes.off_topic(cases[1], cases, 1) == cases[0].good
    lonely = probes.off_topic(cases[0], cases[:1], 0)
    assert answer_format.well_formed(lonely) and cases[0].answer not in lonely


# -- detection ---------------------------------------------------------------------------------------------
def test_a_sound_reward_passes_every_probe() -> None:
    report = run_probes(_scorer(), cases=[*_cases("alpha"), *_cases("beta", offset=3)])
    assert report.passed, report.to_markdown()
    assert [lo.label for lo in report.labels] == ["alpha", "beta"]
    alpha = report.label("alpha")
    assert alpha.n == 3 and alpha.good_mean == pytest.approx(2.0)  # format 1 + exact 1
    assert {p.policy for p in alpha.policies} == set(DEFAULT_POLICIES)
    for p in alpha.policies:
        assert p.margin > 0 and p.beat_rate == 0.0 and p.errors == 0
    empty = next(p for p in report.label("beta").policies if p.policy == "empty")
    assert empty.mean == 0.0 and empty.margin == pytest.approx(2.0)


def test_a_keyword_reward_is_caught_by_boilerplate_and_refusals() -> None:
    report = run_probes(_scorer(), cases=[*_cases("alpha"), *_cases("gamed_keywords")])
    assert not report.passed
    assert report.label("alpha").passed
    gamed = report.label("gamed_keywords")
    failing = {p.policy: p for p in gamed.failures()}
    assert {"keyword_stuffed", "always_refuse"} <= set(failing)
    assert failing["keyword_stuffed"].margin < 0 and failing["keyword_stuffed"].beat_rate == 1.0
    assert ("gamed_keywords", "keyword_stuffed", failing["keyword_stuffed"].margin) in report.failures()
    assert failing["keyword_stuffed"].components["keywords"] == pytest.approx(1.0)


def test_a_length_reward_is_caught_by_repetition() -> None:
    report = run_probes(_scorer(), cases=_cases("gamed_length"))
    assert [p.policy for p in report.label("gamed_length").failures()] == ["repeated"]


def test_a_tie_is_not_a_pass_and_missing_components_are_named() -> None:
    # the optional verifier is not installed: every well-formed answer earns format 1 + a flat 1.0
    report = run_probes(_scorer(), cases=_cases("judge_missing"))
    outcome = report.label("judge_missing")
    assert outcome.missing == ("not-installed",)
    refuse = next(p for p in outcome.policies if p.policy == "always_refuse")
    assert refuse.margin == pytest.approx(0.0) and refuse.tie_rate == 1.0 and not refuse.passed
    assert not report.passed


def test_min_margin_raises_the_bar() -> None:
    cases = _cases("gamed_length")
    policies = {"truncated_answer": DEFAULT_POLICIES["truncated_answer"]}
    assert run_probes(_scorer(), cases=cases, policies=policies).passed
    assert not run_probes(_scorer(), cases=cases, policies=policies, min_margin=10.0).passed


class Exploding(Verifier):
    """Fails on empty answers, as a buggy verifier might."""

    principle = "exact"
    labels = ("right", "wrong")

    def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
        if any(not answer_format.final_answer(item.response) for item in items):
            raise RuntimeError("cannot score an empty answer")
        return ExactAnswer().score(items)


def test_an_item_without_a_reward_is_reported_not_passed() -> None:
    recipe = Recipe.loads(RECIPE, available=["format", "exact", "keywords", "contains"])
    scorer = RecipeScorer(recipe, verifiers={"format": FakeFormat(), "exact": Exploding()})
    report = run_probes(scorer, cases=_cases("alpha"), policies={"empty": DEFAULT_POLICIES["empty"]})
    outcome = report.label("alpha")
    (empty,) = outcome.policies
    assert empty.errors == 3 and not empty.passed and outcome.good_errors == 0
    assert outcome.error_messages and "RuntimeError" in outcome.error_messages[0]
    assert "err" in report.to_markdown()


def test_report_serialises_and_renders() -> None:
    report = run_probes(_scorer(), cases=[*_cases("alpha"), *_cases("gamed_keywords")], seed=3)
    data = json.loads(json.dumps(report.as_dict()))
    assert data["suite"] == "reward-probes" and data["passed"] is False and data["seed"] == 3
    assert data["labels"]["alpha"]["policies"]["empty"]["passed"] is True
    assert {(f["label"], f["policy"]) for f in data["failures"]} >= {("gamed_keywords", "keyword_stuffed")}
    table = report.to_markdown()
    assert table.splitlines()[0].startswith("| label | n | good | always_refuse")
    assert "| alpha | 3 |" in table and "✗" in table and "FAILED" in table
    assert "gamed_keywords × keyword_stuffed" in table


def test_nothing_probed_is_not_a_pass() -> None:
    assert not run_probes(_scorer(), cases=[]).passed


def test_unknown_label_is_a_config_error() -> None:
    from safework.core.errors import ConfigError

    with pytest.raises(ConfigError, match="no probe data"):
        probes.build_cases(["no-such-label"])
    with pytest.raises(ConfigError, match="at least 1"):
        probes.build_cases(n_per_label=0)


# -- real data and the real recipe ------------------------------------------------------------------------
@pytest.mark.slow
def test_build_cases_uses_real_data_deterministically() -> None:
    cases = probes.build_cases(n_per_label=4, seed=0)
    assert cases == probes.build_cases(n_per_label=4, seed=0)
    assert [c.label for c in cases] == [label for label in probes.DEFAULT_LABELS for _ in range(4)]
    by_label: dict[str, list[ProbeCase]] = {}
    for case in cases:
        by_label.setdefault(case.label, []).append(case)
        assert answer_format.well_formed(case.good)
    assert all(c.metadata["query_type"] == "harmful" for c in by_label["safety"])
    assert all(c.metadata["query_type"] == "benign" for c in by_label["value"])
    assert {c.source for c in by_label["value"]} == {"rho-contrast-pairs"}
    assert not {c.prompt for c in by_label["safety"]} & {c.prompt for c in by_label["value"]}
    rule = [c.prompt for label in ("knowledge_rule", "general_rule", "gsm8k_rule") for c in by_label[label]]
    assert len(set(rule)) == len(rule)
    for label in ("knowledge", "knowledge_rule", "general_rule", "gsm8k_rule", "general"):
        assert all(c.reference and c.reference in c.answer for c in by_label[label])
    assert all("\\boxed{" in c.answer for c in by_label["gsm8k_rule"])
    assert {c.source for c in by_label["normal"]} == {"fiqa"}


@functools.cache
def _default_report() -> probes.ProbeReport:
    return run_probes(n_per_label=8, seed=0)


@pytest.mark.slow
def test_acceptance_no_degenerate_policy_games_the_default_recipe() -> None:
    """Acceptance gate for M3-RL: with the default recipe and the installed verifiers, every degenerate
    policy earns strictly less than good answers, for every task label."""
    report = _default_report()
    assert {lo.label for lo in report.labels} == set(probes.DEFAULT_LABELS)
    assert report.passed, "reward recipe can be gamed:\n" + report.to_markdown()
