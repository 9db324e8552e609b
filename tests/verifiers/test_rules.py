"""Rule-based verifiers: format, math answer match, length budget, language consistency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from safework.core import answer_format
from safework.core.errors import ConfigError
from safework.verifiers import VerifierItem
from safework.verifiers.rules import (
    FormatVerifier,
    LanguageConsistencyVerifier,
    LengthVerifier,
    MathAnswerVerifier,
    chinese_share,
    extract_math_answer,
    last_boxed,
    math_equivalent,
)

# The package plugin registers these names; the test below checks it.
RULES: dict[str, Callable[..., Any]] = {
    "format": FormatVerifier,
    "math-answer": MathAnswerVerifier,
    "length": LengthVerifier,
    "language-consistency": LanguageConsistencyVerifier,
}


GOOD = "<think>Two and two make four.</think> The answer is 4."


# -- format --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("response", "ok"),
    [
        (GOOD, True),
        ("preamble <think>x</think>y", True),  # anything may precede the think block
        ("<think>   </think> answer", False),  # empty think content
        ("<think>reasoning</think>   \n", False),  # no answer after the block
        ("<think>reasoning without close tag", False),
        ("just an answer", False),
        ("<think>a</think><think>b</think> c", True),
    ],
)
def test_format_rule(response: str, ok: bool) -> None:
    assert answer_format.well_formed(response) is ok  # the verifier is the shared rule, nothing more
    [score] = FormatVerifier()([VerifierItem("q", response)])
    assert (score.score, score.label) == ((1.0, "ok") if ok else (0.0, "bad"))


def test_boxed_format_requires_a_box_after_the_think_block() -> None:
    verifier = FormatVerifier(require_boxed=True)
    scores = verifier(
        [
            VerifierItem("q", "<think>add</think> so \\boxed{4}"),
            VerifierItem("q", "<think>add</think> so 4"),
            VerifierItem("q", "\\boxed{4} <think>add</think> so 4"),
        ]
    )
    assert [s.score for s in scores] == [1.0, 0.0, 0.0]


# -- math answers --------------------------------------------------------------------------------------
def test_last_boxed_matches_nested_braces() -> None:
    assert last_boxed("\\boxed{1} then \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert last_boxed("no box") is None


@pytest.mark.parametrize(
    ("response", "extracted"),
    [
        ("<think>\\boxed{9}</think> so \\boxed{\\dfrac{3}{4}}", "(3)/(4)"),
        ("<think>maybe 7</think> It costs $1,250 in total.", "1,250"),
        ("<think>42</think> no number here", None),
        ("The answer: -3.5", "-3.5"),
        ("<think>so it is \\boxed{7}", None),  # truncated reasoning: no answer was given, nothing to grade
    ],
)
def test_extraction_uses_the_answer_after_think(response: str, extracted: str | None) -> None:
    assert extract_math_answer(response) == extracted


@pytest.mark.parametrize(
    ("prediction", "reference", "equal"),
    [
        ("1,000", "1000", True),
        ("0.5", "1/2", True),
        ("(3)/(4)", "0.75", True),
        ("50\\%", "50", True),  # GSM-style: a percent answer is compared by its number
        ("28080.0", "28080", True),
        ("9 apples", "9", True),
        ("8", "9", False),
        ("x^2 + 1", "x^2+1", True),
        ("", "0", False),
    ],
)
def test_math_equivalence(prediction: str, reference: str, equal: bool) -> None:
    assert math_equivalent(prediction, reference) is equal


@pytest.mark.slow
def test_math_answer_on_reasoning_gym_records() -> None:
    from safework.core.data.catalogue import get_dataset

    records = get_dataset("gsm-symbolic").load(limit=20)
    verifier = MathAnswerVerifier()
    right = [
        VerifierItem(
            r["question"], f"<think>compute</think> The result is \\boxed{{{r['answer']}}}.", r["answer"]
        )
        for r in records
    ]
    wrong = [
        VerifierItem(r["question"], f"<think>compute</think> So {int(float(r['answer'])) + 1}.", r["answer"])
        for r in records
    ]
    assert all(s.label == "correct" and s.score == 1.0 for s in verifier(right))
    assert all(s.label == "incorrect" and s.score == 0.0 for s in verifier(wrong))


# -- length --------------------------------------------------------------------------------------------
def test_length_linear_ramp_and_hard_cut() -> None:
    linear = LengthVerifier(budget=10, unit="chars", penalty="linear", tolerance=1.0)
    hard = LengthVerifier(budget=10, unit="chars", penalty="hard")
    items = [VerifierItem("q", "x" * n) for n in (5, 10, 15, 20, 40)]
    assert [s.score for s in linear(items)] == [1.0, 1.0, 0.5, 0.0, 0.0]
    assert [s.score for s in hard(items)] == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert [s.label for s in hard(items)] == ["within", "within", "over", "over", "over"]


def test_length_counts_the_chosen_part_in_rough_tokens() -> None:
    verifier = LengthVerifier(budget=3, unit="tokens", part="answer", penalty="hard")
    [answer_only, short] = verifier(
        [VerifierItem("q", "<think>" + "many words " * 50 + "</think> Yes, it is."), VerifierItem("q", "a b")]
    )
    assert answer_only.raw["tokens"] == 5  # "Yes" "," "it" "is" "." — the 100 think words are not counted
    assert answer_only.score == 0.0
    assert short.raw["tokens"] == 2 and short.score == 1.0


def test_length_of_truncated_reasoning_is_all_think_and_no_answer() -> None:
    truncated = VerifierItem("q", "<think>" + "step " * 10)  # cut off before </think>
    answer = LengthVerifier(budget=3, unit="tokens", part="answer")([truncated])[0]
    think = LengthVerifier(budget=3, unit="tokens", part="think")([truncated])[0]
    assert answer.raw["tokens"] == 0 and answer.label == "within"
    assert think.raw["tokens"] == 10 and think.label == "over"


def test_length_rejects_bad_configuration() -> None:
    with pytest.raises(ConfigError, match="budget"):
        LengthVerifier(budget=0)
    with pytest.raises(ConfigError, match="penalty"):
        LengthVerifier(penalty="soft")


# -- language consistency ------------------------------------------------------------------------------
def test_chinese_share_counts_han_against_latin_letters() -> None:
    assert chinese_share("水是液体") == 1.0
    assert chinese_share("water") == 0.0
    assert chinese_share("42 + 7 = 49") is None
    share = chinese_share("水 water")
    assert share is not None and 0 < share < 0.5


@pytest.mark.parametrize(
    ("prompt", "response", "label", "score"),
    [
        ("什么是水？", "<think>水是一种液体。</think>水是液体。", "consistent", 1.0),
        ("什么是水？", "<think>Water is a liquid.</think>水是液体。", "inconsistent", 0.0),
        ("什么是水？", "<think>水是一种液体。</think>Water is a liquid.", "inconsistent", 0.0),
        ("What is water?", "<think>It is a liquid.</think>A liquid.", "consistent", 1.0),
        ("What is water?", "<think>It is a liquid.</think>液体。", "inconsistent", 0.0),
        (
            "计算 6 乘以 7",
            "<think>六乘七等于四十二。</think>42",
            "consistent",
            1.0,
        ),  # a bare number is neutral
        ("什么是水？", "水是液体。", "bad_format", 0.0),  # reward = format × consistency
    ],
)
def test_language_consistency(prompt: str, response: str, label: str, score: float) -> None:
    [result] = LanguageConsistencyVerifier()([VerifierItem(prompt, response)])
    assert (result.label, result.score) == (label, score)


def test_rule_verifiers_are_registered_by_the_package_plugin() -> None:
    from safework.verifiers import get_verifier

    for name, cls in RULES.items():
        assert type(get_verifier(name)) is cls


def test_format_fails_an_answer_that_repeats_itself() -> None:
    from safework.core.answer_format import build
    from safework.verifiers.rules import FormatVerifier, repetitive

    answer = "The total is 48 + 24 = 72, so she sold \\boxed{72} clips."
    assert not repetitive(answer)
    assert repetitive("\n\n".join([answer] * 10))
    prose = " ".join(f"Step {i}: add the {i}th term to the running sum and carry on." for i in range(12))
    assert not repetitive(prose)  # a long list with a shared shape is not repetition
    verifier = FormatVerifier(require_boxed=True)
    good, pasted = build("48 + 24", answer), build("48 + 24", "\n\n".join([answer] * 10))
    assert [s.score for s in verifier([VerifierItem("q", good), VerifierItem("q", pasted)])] == [1.0, 0.0]
    assert FormatVerifier(reject_repetition=False).ok(pasted)
