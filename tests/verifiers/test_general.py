"""The general reference judge: reference split into sub-answers, each checked, all / some / none."""

from __future__ import annotations

import pytest

from safework.verifiers import VerifierInputError, VerifierItem, get_verifier
from safework.verifiers.general import GeneralVerifier, sub_answers
from safework.verifiers.knowledge import KnowledgeVerifier
from safework.verifiers.labels import GENERAL


# -- splitting the reference ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reference", "parts"),
    [
        ("Paris", ["Paris"]),
        ("Paris, France", ["Paris, France"]),  # commas never split
        ("The population is 1,000", ["The population is 1,000"]),
        ("Jane Austen; 1813", ["Jane Austen", "1813"]),
        ("(a) 60 km/h\n(b) 300 km", ["60 km/h", "300 km"]),
        ("1. Paris 2. Berlin 3. 42", ["Paris", "Berlin", "42"]),
        ("Answers: (1) x = 4 (2) y = 9", ["x = 4", "y = 9"]),  # preamble dropped
        ("- oxygen\n- carbon dioxide\n\n", ["oxygen", "carbon dioxide"]),
        ("pi is about 3.14", ["pi is about 3.14"]),  # "3." is not a list marker
        ("Step 2. Then 3. Done", ["Step 2. Then 3. Done"]),  # markers that do not count from 1
        ("水；二氧化碳", ["水", "二氧化碳"]),
        ('["NYC", "New York City"]', ['["NYC", "New York City"]']),  # JSON aliases: one sub-question
        ("   ", []),
    ],
)
def test_reference_split_rule(reference: str, parts: list[str]) -> None:
    assert sub_answers(reference) == parts


# -- verdicts, lexical and numeric signals only (no model) ------------------------------------------------
CAPITALS = "(1) What is the capital of France? (2) What is the capital of Germany? (3) What is 6 x 7?"
TRAIN = (
    "A train travels 120 km in 2 hours. (a) What is its average speed? "
    "(b) How far does it go in 5 hours at that speed?"
)
AUSTEN = "Name the author of 'Pride and Prejudice' and the year it was published."

CASES = [
    (
        CAPITALS,
        "1. Paris 2. Berlin 3. 42",
        "<think>Paris; Berlin; 6*7=42.</think> (1) Paris (2) Berlin (3) 42",
        "all",
    ),
    (
        CAPITALS,
        "1. Paris 2. Berlin 3. 42",
        "<think>Easy.</think> The capital of France is Paris, the capital of Germany is Munich, "
        "and 6 x 7 = 42.",
        "some",
    ),
    (
        CAPITALS,
        "1. Paris 2. Berlin 3. 42",
        "<think>Hmm.</think> France: Lyon. Germany: Munich. 6 x 7 = 48.",
        "none",
    ),
    (TRAIN, "(a) 60 km/h\n(b) 300 km", "<think>120/2 = 60, 60*5 = 300</think> (a) 60 km/h (b) 300 km", "all"),
    (TRAIN, "(a) 60 km/h\n(b) 300 km", "<think>120/2 = 60</think> (a) 60 km/h (b) 250 km", "some"),
    (TRAIN, "(a) 60 km/h\n(b) 300 km", "<think>Guess.</think> (a) 40 km/h (b) 200 km", "none"),
    (AUSTEN, "Jane Austen; 1813", "<think>Regency novel.</think> Jane Austen published it in 1813.", "all"),
    (
        AUSTEN,
        "Jane Austen; 1813",
        "<think>Regency novel.</think> It was written by Jane Austen in 1820.",
        "some",
    ),
    (AUSTEN, "Jane Austen; 1813", "<think>Victorian?</think> Charlotte Bronte wrote it in 1847.", "none"),
]


@pytest.mark.parametrize(("question", "reference", "response", "label"), CASES)
def test_multi_part_references_fully_partly_and_not_answered(
    question: str, reference: str, response: str, label: str
) -> None:
    [score] = GeneralVerifier(semantic=False)([VerifierItem(question, response, reference=reference)])
    assert (score.principle, score.label, score.score) == ("general", label, GENERAL.scores[label])
    correct = [part["correct"] for part in score.raw["parts"]]
    assert score.raw["total"] == len(sub_answers(reference)) == len(correct)
    assert score.raw["correct"] == sum(correct)
    assert all(correct) is (label == "all") and (not any(correct)) is (label == "none")


def test_the_part_that_was_wrong_is_named() -> None:
    question, reference, response, _ = CASES[1]
    [score] = GeneralVerifier(semantic=False)([VerifierItem(question, response, reference=reference)])
    verdicts = {part["reference"]: part["correct"] for part in score.raw["parts"]}
    assert verdicts == {"Paris": True, "Berlin": False, "42": True}
    assert score.raw["fraction"] == pytest.approx(2 / 3)


def test_one_part_reference_gets_the_knowledge_verdict() -> None:
    items = [
        VerifierItem(
            "Which gas do plants absorb?",
            "<think>.</think> Carbon dioxide (CO2).",
            reference="Carbon dioxide",
        ),
        VerifierItem(
            "Which gas do plants absorb?", "<think>.</think> They absorb oxygen.", reference="Carbon dioxide"
        ),
        VerifierItem("q", "The Big Apple", reference="NYC", metadata={"answers": ["Big Apple"]}),  # alias
    ]
    general = GeneralVerifier(semantic=False)(items)
    knowledge = KnowledgeVerifier(semantic=False)(items)
    assert [g.label for g in general] == ["all", "none", "all"]
    assert [k.label for k in knowledge] == ["true", "false", "true"]


def test_empty_and_truncated_answers_are_none() -> None:
    reference = "1. Paris 2. Berlin 3. 42"
    scores = GeneralVerifier(semantic=False)(
        [
            VerifierItem(CAPITALS, "<think>Paris, Berlin, 42</think>   ", reference=reference),
            VerifierItem(CAPITALS, "<think>Paris, Berlin and then 42, so", reference=reference),  # cut off
        ]
    )
    assert [(s.label, s.score) for s in scores] == [("none", 0.0), ("none", 0.0)]


def test_reference_is_required_and_the_name_is_registered() -> None:
    verifier = get_verifier("general")
    assert type(verifier) is GeneralVerifier and verifier.requires_reference
    assert (verifier.principle, verifier.labels) == ("general", ("all", "some", "none"))
    with pytest.raises(VerifierInputError, match="reference"):
        verifier([VerifierItem("q", "a")])


# -- with the embedded MiniLM encoder -------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(("question", "reference", "response", "label"), CASES)
def test_semantic_signal_keeps_the_verdicts(question: str, reference: str, response: str, label: str) -> None:
    [score] = GeneralVerifier()([VerifierItem(question, response, reference=reference)])
    assert score.label == label
