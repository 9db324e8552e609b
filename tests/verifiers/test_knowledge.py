"""The knowledge verifier and the text normalisation under it."""

from __future__ import annotations

from fractions import Fraction

import pytest

from safework.verifiers import KNOWLEDGE, VerifierItem
from safework.verifiers.knowledge import KnowledgeVerifier, gold_answers
from safework.verifiers.textnorm import (
    exact_match,
    normalize_answer,
    numbers_in,
    numeric_match,
    token_f1,
)


def _items() -> list[VerifierItem]:
    q = "who sings it's all about the bass"
    return [
        VerifierItem(
            q, "<think>A 2014 hit.</think> It is sung by Meghan Trainor.", reference="Meghan Trainor"
        ),
        VerifierItem(q, "Taylor Swift", reference="Meghan Trainor"),
        VerifierItem("How many apples are left?", "9 apples", reference="9"),
    ]


# -- normalisation -------------------------------------------------------------------------------------
def test_squad_normalisation_and_f1() -> None:
    assert normalize_answer("The  Beatles!") == "beatles"
    assert exact_match("the beatles.", "Beatles") and not exact_match("", "")
    assert token_f1("Meghan Trainor", "meghan trainor") == 1.0
    assert token_f1("Taylor Swift", "Meghan Trainor") == 0.0
    assert token_f1("Meghan Trainor sings it", "Meghan Trainor") == pytest.approx(2 * 0.5 * 1 / 1.5)


@pytest.mark.parametrize(
    ("prediction", "gold", "verdict"),
    [
        ("9 apples", "9", True),
        ("1,000", "1000", True),
        ("0.5", "1/2", True),
        ("nine", "9", True),
        ("about 1969", "1969", True),
        ("8 apples", "9", False),
        ("3.14159", "3.14", False),  # numbers must match, not round to each other
        ("Paris", "Paris, France", None),  # gold is not numeric: no numeric verdict
    ],
)
def test_numeric_equivalence(prediction: str, gold: str, verdict: bool | None) -> None:
    assert numeric_match(prediction, gold) is verdict


def test_numbers_in_reads_commas_fractions_and_words() -> None:
    assert numbers_in("1,000 then -2.5, 3/4 and twenty") == [
        Fraction(1000),
        Fraction(-5, 2),
        Fraction(3, 4),
        20,
    ]


def test_gold_aliases_from_reference_list_and_metadata() -> None:
    item = VerifierItem(
        "q", "a", reference='["NYC", "New York City"]', metadata={"answers": ["New York", "NYC"]}
    )
    assert gold_answers(item) == ["NYC", "New York City", "New York"]
    assert gold_answers(VerifierItem("q", "a", reference="Paris")) == ["Paris"]


# -- the verifier, lexical + numeric only (no model; the conformance kit runs in test_conformance_kit.py) --
def test_lexical_verdicts_and_soft_scores() -> None:
    scores = KnowledgeVerifier(semantic=False)(_items())
    assert [s.label for s in scores] == ["true", "false", "true"]
    assert scores[0].score == 1.0 and scores[1].score == 0.0
    assert scores[2].raw["components"]["numeric"] is True
    for score in scores:
        probs = score.raw["probabilities"]
        assert probs["true"] + probs["false"] == pytest.approx(1.0)
        # spec §5 soft score = (P(TRUE) + 1 - P(FALSE)) / 2
        assert score.score == pytest.approx((probs["true"] + 1 - probs["false"]) / 2)
        assert score.principle == KNOWLEDGE.principle


def test_empty_answer_scores_zero_even_with_a_think_block() -> None:
    [score] = KnowledgeVerifier(semantic=False)(
        [VerifierItem("q", "<think>Paris</think>   ", reference="Paris")]
    )
    assert score.score == 0.0 and score.label == "false"


def test_truncated_reasoning_is_not_judged_as_an_answer() -> None:
    """Cut off before ``</think>``: the gold in the reasoning must not count as an answer."""
    [score] = KnowledgeVerifier(semantic=False)(
        [VerifierItem("Capital of France?", "<think>It is Paris, I am sure", reference="Paris")]
    )
    assert score.score == 0.0 and score.label == "false" and score.raw["components"]["empty_answer"]


def test_numeric_gold_overrides_word_overlap() -> None:
    [wrong] = KnowledgeVerifier(semantic=False)(
        [VerifierItem("q", "8 apples are left", reference="9 apples")]
    )
    assert wrong.label == "false" and wrong.score < 0.01


def test_any_alias_may_match() -> None:
    item = VerifierItem("q", "The Big Apple", reference="NYC", metadata={"answers": ["Big Apple"]})
    [score] = KnowledgeVerifier(semantic=False)([item])
    assert score.label == "true" and score.raw["components"]["gold"] == "Big Apple"


# -- with the embedded MiniLM encoder -------------------------------------------------------------------
@pytest.mark.slow
def test_semantic_signal_accepts_paraphrases_and_rejects_unrelated_answers() -> None:
    gold = "Veins appear blue because blue light does not penetrate deeply into human tissue"
    items = [
        VerifierItem(
            "Why do veins appear blue?", "Blue light does not get deep into skin tissue.", reference=gold
        ),
        VerifierItem(
            "Why do veins appear blue?", "Because the moon landing happened in 1969.", reference=gold
        ),
    ]
    with_model, lexical = KnowledgeVerifier()(items), KnowledgeVerifier(semantic=False)(items)
    assert with_model[0].raw["components"]["cosine"] > with_model[1].raw["components"]["cosine"] + 0.3
    assert with_model[0].score > lexical[0].score  # the encoder adds evidence the words alone lack
    assert with_model[1].label == "false"


@pytest.mark.slow
def test_gold_true_and_swapped_gold_false_on_nq_open() -> None:
    """Constructed set from the real catalogue: each question's gold (TRUE) vs another question's (FALSE)."""
    from safework.core.data.catalogue import get_dataset

    records = get_dataset("nq-open").load(limit=30)
    golds = [r["answers"][0] for r in records]
    right = [
        VerifierItem(r["question"], g, reference=g, metadata={"answers": r["answers"]})
        for r, g in zip(records, golds, strict=True)
    ]
    swapped = golds[1:] + golds[:1]
    wrong = [
        VerifierItem(r["question"], s, reference=r["answers"][0], metadata={"answers": r["answers"]})
        for r, s in zip(records, swapped, strict=True)
        if s not in r["answers"]
    ]
    scores = KnowledgeVerifier()(right + wrong)
    true_ok = sum(s.label == "true" for s in scores[: len(right)])
    false_ok = sum(s.label == "false" for s in scores[len(right) :])
    assert true_ok == len(right)
    assert false_ok >= 0.9 * len(wrong)
