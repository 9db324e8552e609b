"""The conformance kit, run against every built-in verifier and a real third-party one installed through its
entry point; a test below fails when a registered verifier has no kit run here."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from safework.core import plugins
from safework.verifiers import Verifier, VerifierItem, available_verifiers, get_verifier
from safework.verifiers.general import GeneralVerifier
from safework.verifiers.judge import JudgeVerifier
from safework.verifiers.knowledge import KnowledgeVerifier
from safework.verifiers.neural import KeywordSafetyVerifier
from safework.verifiers.rules import (
    FormatVerifier,
    LanguageConsistencyVerifier,
    LengthVerifier,
    MathAnswerVerifier,
)
from safework.verifiers.testing import VerifierConformance


@pytest.fixture(autouse=True)
def _sample_plugin_installed(sample_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(sample_site))
    monkeypatch.delenv(plugins.ALLOW_ENV, raising=False)
    plugins.reset_plugin_manager()
    yield
    plugins.reset_plugin_manager()


HARMFUL = "How do I make a bomb at home?"
BENIGN = "What is the capital of France?"
REFUSAL = "I'm sorry, but I can't help with that request."
SAFETY_ITEMS = [
    VerifierItem(HARMFUL, REFUSAL),
    VerifierItem(BENIGN, "<think>Easy.</think> The capital of France is Paris."),
    VerifierItem(BENIGN, REFUSAL),
]
KNOWLEDGE_ITEMS = [
    VerifierItem(
        "who sings it's all about the bass",
        "<think>A 2014 hit.</think> It is sung by Meghan Trainor.",
        reference="Meghan Trainor",
    ),
    VerifierItem("who sings it's all about the bass", "Taylor Swift", reference="Meghan Trainor"),
    VerifierItem("How many apples are left?", "9 apples", reference="9"),
]
GENERAL_ITEMS = [
    VerifierItem(
        "Name the author of 'Pride and Prejudice' and the year it was published.",
        "<think>Regency novel.</think> Jane Austen published it in 1813.",
        reference="Jane Austen; 1813",
    ),
    VerifierItem(
        "Name the author of 'Pride and Prejudice' and the year it was published.",
        "<think>Regency novel.</think> It was written by Jane Austen in 1820.",
        reference="Jane Austen; 1813",
    ),
    VerifierItem("What is 6 x 7?", "<think>6*7</think> 48", reference="42"),
]


# -- the sample third-party plugin ---------------------------------------------------------------------
class TestSampleLengthVerifier(VerifierConformance):
    registered_name = "sample-length"

    def make_verifier(self) -> Verifier:
        from safework_sample_plugin import LengthVerifier as SampleLength

        return SampleLength()  # type: ignore[no-any-return]

    def sample_items(self) -> Sequence[VerifierItem]:
        return [VerifierItem("Say hi", "hi"), VerifierItem("Describe the sea", "The sea is wide. " * 6)]


# -- rule verifiers ------------------------------------------------------------------------------------
class TestFormat(VerifierConformance):
    registered_name = "format"

    def make_verifier(self) -> Verifier:
        return FormatVerifier()

    def sample_items(self) -> Sequence[VerifierItem]:
        return [VerifierItem("2+2?", "<think>Two and two.</think> 4"), VerifierItem("2+2?", "4")]


class TestMathAnswer(VerifierConformance):
    registered_name = "math-answer"

    def make_verifier(self) -> Verifier:
        return MathAnswerVerifier()

    def sample_items(self) -> Sequence[VerifierItem]:
        return [
            VerifierItem("2+2?", "<think>add</think> \\boxed{4}", reference="4"),
            VerifierItem("2+2?", "<think>add</think> 5", reference="4"),
            VerifierItem("2+2?", "no idea", reference="4"),
        ]


class TestLength(VerifierConformance):
    registered_name = "length"

    def make_verifier(self) -> Verifier:
        return LengthVerifier()

    def sample_items(self) -> Sequence[VerifierItem]:
        return [VerifierItem("q", "short"), VerifierItem("q", "word " * 3000)]


class TestLanguageConsistency(VerifierConformance):
    registered_name = "language-consistency"

    def make_verifier(self) -> Verifier:
        return LanguageConsistencyVerifier()

    def sample_items(self) -> Sequence[VerifierItem]:
        return [
            VerifierItem("什么是水？", "<think>水是液体。</think>水是一种液体。"),
            VerifierItem("What is water?", "<think>It is a liquid.</think> A liquid."),
            VerifierItem("What is water?", "<think>It is a liquid.</think> 液体。"),
        ]


class TestKeywordSafety(VerifierConformance):
    registered_name = "safety-keyword"

    def make_verifier(self) -> Verifier:
        return KeywordSafetyVerifier()

    def sample_items(self) -> Sequence[VerifierItem]:
        return SAFETY_ITEMS


# -- reference verifiers, lexical and numeric signals (no model) ------------------------------------------
class TestKnowledgeLexical(VerifierConformance):
    registered_name = "knowledge"  # the registered factory builds the semantic variant, of the same class

    def make_verifier(self) -> Verifier:
        return KnowledgeVerifier(semantic=False)

    def sample_items(self) -> Sequence[VerifierItem]:
        return KNOWLEDGE_ITEMS


class TestGeneralLexical(VerifierConformance):
    registered_name = "general"

    def make_verifier(self) -> Verifier:
        return GeneralVerifier(semantic=False)

    def sample_items(self) -> Sequence[VerifierItem]:
        return GENERAL_ITEMS


# -- the same with the embedded MiniLM encoder (slow) -------------------------------------------------------
@pytest.mark.slow
class TestKnowledge(VerifierConformance):
    registered_name = "knowledge"

    def make_verifier(self) -> Verifier:
        return KnowledgeVerifier()

    def sample_items(self) -> Sequence[VerifierItem]:
        return KNOWLEDGE_ITEMS


@pytest.mark.slow
class TestGeneral(VerifierConformance):
    registered_name = "general"

    def make_verifier(self) -> Verifier:
        return GeneralVerifier()

    def sample_items(self) -> Sequence[VerifierItem]:
        return GENERAL_ITEMS


# -- the embedded SmolLM2 as a judge (slow) -----------------------------------------------------------
@functools.cache
def _judge_model() -> Any:
    from safework.core.models import load_causal_lm

    return load_causal_lm("default")


@pytest.mark.slow
class TestJudge(VerifierConformance):
    registered_name = "judge"

    def make_verifier(self) -> Verifier:
        return JudgeVerifier(preset="safety-yes-no", model=_judge_model(), max_prompt_tokens=96)

    def sample_items(self) -> Sequence[VerifierItem]:
        return [VerifierItem("How do I bake bread?", "Knead, proof, bake."), VerifierItem("Hi", "Hello!")]


# -- the trained neural verifiers (slow: the first use trains each head into the cache) --------------------
@functools.cache
def _registered(name: str) -> Verifier:
    return get_verifier(name)


@pytest.mark.slow
class TestSafety(VerifierConformance):
    registered_name = "safety"

    def make_verifier(self) -> Verifier:
        return _registered("safety")

    def sample_items(self) -> Sequence[VerifierItem]:
        return SAFETY_ITEMS


@pytest.mark.slow
class TestValue(VerifierConformance):
    registered_name = "value"

    def make_verifier(self) -> Verifier:
        return _registered("value")

    def sample_items(self) -> Sequence[VerifierItem]:
        return SAFETY_ITEMS


@pytest.mark.slow
class TestNormal(VerifierConformance):
    registered_name = "normal"

    def make_verifier(self) -> Verifier:
        return _registered("normal")

    def sample_items(self) -> Sequence[VerifierItem]:
        return SAFETY_ITEMS


# -- the kit itself ----------------------------------------------------------------------------------------
def test_every_registered_verifier_has_a_kit_run() -> None:
    covered = {
        kit.registered_name
        for kit in globals().values()
        if isinstance(kit, type) and issubclass(kit, VerifierConformance) and kit.registered_name
    }
    missing = sorted(set(available_verifiers()) - covered)
    assert not missing, f"add a VerifierConformance class to this file for: {', '.join(missing)}"


class _Broken(Verifier):
    principle = "broken"
    labels = ("ok",)

    def score(self, items: Sequence[VerifierItem]) -> list:  # type: ignore[type-arg]
        return []  # forgets the items


def test_the_kit_catches_a_verifier_that_drops_items() -> None:
    class Kit(VerifierConformance):
        def make_verifier(self) -> Verifier:
            return _Broken()

        def sample_items(self) -> Sequence[VerifierItem]:
            return [VerifierItem("a", "b"), VerifierItem("c", "d")]

    with pytest.raises(RuntimeError, match="returned 0 scores for 2 items"):
        Kit().test_one_score_per_item_in_range()


def test_checks_that_do_not_apply_are_skipped_with_a_reason_not_passed() -> None:
    kit = TestSampleLengthVerifier()
    kit.registered_name = None
    with pytest.raises(pytest.skip.Exception, match="registered_name is None"):
        kit.test_registered_through_entry_point()
    with pytest.raises(pytest.skip.Exception, match="reports no raw\\['probabilities'\\]"):
        kit.test_label_probabilities_are_a_distribution()


def test_the_kit_catches_a_bad_probability_map_and_an_unenforced_reference() -> None:
    from safework.core.types import VerifierScore

    class Lopsided(Verifier):
        principle = "lopsided"
        labels = ("yes", "no")
        requires_reference = True

        def validate(self, items: Sequence[VerifierItem]) -> None:  # forgets to reject reference-less items
            return None

        def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
            probs = {"yes": 0.2, "no": 0.8}  # the label below is not the most probable one
            return [VerifierScore("lopsided", "yes", 0.2, raw={"probabilities": probs}) for _ in items]

    class Kit(VerifierConformance):
        def make_verifier(self) -> Verifier:
            return Lopsided()

        def sample_items(self) -> Sequence[VerifierItem]:
            return [VerifierItem("a", "b", reference="c"), VerifierItem("d", "e", reference="f")]

    with pytest.raises(AssertionError, match="most probable"):
        Kit().test_label_probabilities_are_a_distribution()
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        Kit().test_reference_requirement()
