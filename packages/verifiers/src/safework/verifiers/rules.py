"""Rule-based verifiers (spec §4): format, math answer match, length budget, language consistency.

They need no model, so they are exact, fast and deterministic — the cheap half of the reward that keeps the
policy honest about its output format while the neural verifiers judge content.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction
from typing import Any, ClassVar, Literal

from safework.core import answer_format
from safework.core.errors import ConfigError
from safework.core.types import VerifierScore
from safework.verifiers.base import Verifier, VerifierItem
from safework.verifiers.textnorm import (
    normalize_answer,
    numbers_equal,
    numbers_in,
    parse_number,
)

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


REPEAT_NGRAM = 6
REPEAT_MIN_WORDS = 24
REPEAT_DISTINCT_FLOOR = 0.5


def repetitive(text: str) -> bool:
    """The text says the same thing over and over: under half of its word 6-grams are distinct.

    Natural prose, lists and code stay near 1.0; an answer pasted ten times sits near 0.1. Short texts are
    never called repetitive."""
    words = text.lower().split()
    if len(words) < REPEAT_MIN_WORDS:
        return False
    grams = [tuple(words[i : i + REPEAT_NGRAM]) for i in range(len(words) - REPEAT_NGRAM + 1)]
    return len(set(grams)) < REPEAT_DISTINCT_FLOOR * len(grams)


class FormatVerifier(Verifier):
    """1 when the response has a non-empty think block followed by an answer, else 0.

    The rule itself is :func:`safework.core.answer_format.well_formed` (spec §4); ``require_boxed`` adds
    "and the answer (after the last ``</think>``) holds a ``\\boxed{}``", the gsm8k_rule / geo3k_rule format.
    ``reject_repetition`` (on by default; our addition, not the paper's) also fails an answer that repeats
    itself (:func:`repetitive`): without it, pasting a correct answer ten times earns the full reward, and
    RL finds that quickly.
    """

    principle = "format"
    labels = ("ok", "bad")

    def __init__(self, require_boxed: bool = False, reject_repetition: bool = True) -> None:
        self.require_boxed = require_boxed
        self.reject_repetition = reject_repetition

    def ok(self, response: str) -> bool:
        """Whether ``response`` passes the format rule (and holds a box in its answer when required)."""
        if not answer_format.well_formed(response):
            return False
        answer = answer_format.final_answer(response)
        if self.reject_repetition and repetitive(answer):
            return False
        return not self.require_boxed or last_boxed(answer) is not None

    def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
        out = []
        for item in items:
            ok = self.ok(item.response)
            out.append(VerifierScore(self.principle, "ok" if ok else "bad", 1.0 if ok else 0.0))
        return out


# -- math answers ----------------------------------------------------------------------------------------
def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{…}`` (nested braces matched), or None."""
    found = None
    for match in _BOXED.finditer(text):
        depth, start = 1, match.end()
        for pos in range(start, len(text)):
            if text[pos] == "{":
                depth += 1
            elif text[pos] == "}":
                depth -= 1
                if depth == 0:
                    found = text[start:pos]
                    break
    return found


def _strip_latex(text: str) -> str:
    text = re.sub(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"(\1)/(\2)", text)
    text = re.sub(r"\\text\s*\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"\^\s*\{?\\circ\}?", "", text)
    for token in ("\\left", "\\right", "\\!", "\\,", "\\;", "\\$", "$", "\\%", "%"):
        text = text.replace(token, "")
    return text.strip().rstrip(".")


def extract_math_answer(response: str) -> str | None:
    """The final answer: ``\\boxed{}`` content in the answer part if any, else its last number."""
    answer = answer_format.final_answer(response)
    boxed = last_boxed(answer)
    if boxed is not None:
        return _strip_latex(boxed)
    matches = re.findall(r"[-+−]?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?", answer)
    return matches[-1].strip() if matches else None


def _as_number(text: str) -> Fraction | None:
    simple = text.replace("(", "").replace(")", "").replace(" ", "")
    value = parse_number(simple)
    if value is not None:
        return value
    found = numbers_in(text)
    return found[0] if len(found) == 1 else None


def math_equivalent(prediction: str, reference: str) -> bool:
    """Numeric equality (fractions, decimals, thousands commas, percent), reasoning-gym's decimal scorer,
    then normalised string equality for non-numeric answers (e.g. ``x^2+1``)."""
    from reasoning_gym.utils import compute_decimal_reward

    pred, ref = _strip_latex(prediction), _strip_latex(reference)
    if not pred:
        return False
    a, b = _as_number(pred), _as_number(ref)
    if a is not None and b is not None:
        return numbers_equal(a, b)
    if compute_decimal_reward(pred, ref) == 1.0:
        return True
    squash = re.compile(r"\s+")
    return squash.sub("", pred.lower()) == squash.sub("", ref.lower()) or (
        normalize_answer(pred) != "" and normalize_answer(pred) == normalize_answer(ref)
    )


class MathAnswerVerifier(Verifier):
    """Rule answer match: the extracted final answer equals the gold reference (1) or not (0)."""

    principle = "math"
    labels = ("correct", "incorrect", "no_answer")
    requires_reference = True

    def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
        out = []
        for item in items:
            extracted = extract_math_answer(item.response)
            if extracted is None:
                out.append(VerifierScore(self.principle, "no_answer", 0.0, raw={"extracted": None}))
                continue
            ok = math_equivalent(extracted, item.reference or "")
            label = "correct" if ok else "incorrect"
            out.append(VerifierScore(self.principle, label, 1.0 if ok else 0.0, raw={"extracted": extracted}))
        return out


# -- length ---------------------------------------------------------------------------------------------
_ROUGH_TOKEN = re.compile(r"\w+|[^\w\s]")


class LengthVerifier(Verifier):
    """Penalise responses over a budget: 1 within it; over it 0 (``hard``) or a linear ramp to 0 that
    reaches 0 at ``budget · (1 + tolerance)`` (``linear``).

    ``unit`` is ``chars`` or ``tokens``: tokens come from ``tokenizer`` (any ``load_causal_lm`` spec) when
    given, else a rough word/punctuation count that needs no model. ``part`` picks what is measured.
    """

    principle = "length"
    labels = ("within", "over")

    def __init__(
        self,
        budget: int = 1024,
        unit: Literal["chars", "tokens"] = "tokens",
        part: Literal["response", "answer", "think"] = "response",
        penalty: Literal["linear", "hard"] = "linear",
        tolerance: float = 0.5,
        tokenizer: str | None = None,
    ) -> None:
        if budget < 1:
            raise ConfigError(f"length budget must be >= 1 (got {budget})")
        if unit not in ("chars", "tokens") or part not in ("response", "answer", "think"):
            raise ConfigError(
                f"length: unit must be chars|tokens and part response|answer|think ({unit}, {part})"
            )
        if penalty not in ("linear", "hard") or not tolerance > 0:
            raise ConfigError(
                f"length: penalty must be linear|hard and tolerance > 0 ({penalty}, {tolerance})"
            )
        self.budget, self.unit, self.part, self.penalty, self.tolerance = (
            budget,
            unit,
            part,
            penalty,
            tolerance,
        )
        self.tokenizer_spec = tokenizer
        self._tokenizer: Any = None

    def measure(self, response: str) -> int:
        parts = answer_format.split(response)
        text = {"response": response, "answer": parts.answer, "think": parts.think or ""}[self.part]
        if self.unit == "chars":
            return len(text)
        if self.tokenizer_spec is None:
            return len(_ROUGH_TOKEN.findall(text))
        if self._tokenizer is None:
            from safework.core.models import load_tokenizer

            self._tokenizer = load_tokenizer(self.tokenizer_spec)
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
        out = []
        for item in items:
            size = self.measure(item.response)
            over = size - self.budget
            if over <= 0:
                value = 1.0
            elif self.penalty == "hard":
                value = 0.0
            else:
                value = max(0.0, 1.0 - over / (self.tolerance * self.budget))
            label = "within" if over <= 0 else "over"
            out.append(
                VerifierScore(self.principle, label, value, raw={self.unit: size, "budget": self.budget})
            )
        return out


# -- language consistency -------------------------------------------------------------------------------
_CJK_RANGES = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2EBEF),
    (0x30000, 0x3134F),
)


def is_cjk(ch: str) -> bool:
    """A Han ideograph (the unified and compatibility blocks and extensions A–H)."""
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


def is_latin(ch: str) -> bool:
    """A Latin letter (basic plus Latin-1 / Extended-A/B letters)."""
    code = ord(ch)
    return ("a" <= ch.lower() <= "z") or (0xC0 <= code <= 0x24F and code not in (0xD7, 0xF7))


def chinese_share(text: str) -> float | None:
    """Han characters / (Han characters + Latin letters); None when the text has neither (e.g. "42")."""
    han = sum(1 for ch in text if is_cjk(ch))
    latin = sum(1 for ch in text if is_latin(ch))
    return None if han + latin == 0 else han / (han + latin)


class LanguageConsistencyVerifier(Verifier):
    """Spec §4: if > 50% of the question is Chinese, think and answer must be Chinese, else both English;
    reward = format × consistency.

    "Share" counts Han characters against Latin letters (digits, punctuation and spaces are neutral); a
    part with no letters at all (an answer "42") is consistent with either language.
    """

    principle = "language"
    labels = ("consistent", "inconsistent", "bad_format")
    threshold: ClassVar[float] = 0.5

    def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
        out = []
        for item in items:
            if not answer_format.well_formed(item.response):
                out.append(VerifierScore(self.principle, "bad_format", 0.0, raw={"format": 0.0}))
                continue
            parts = answer_format.split(item.response)
            question = chinese_share(item.prompt)
            want_chinese = question is not None and question > self.threshold
            shares = {"think": chinese_share(parts.think or ""), "answer": chinese_share(parts.answer)}
            consistent = all(
                share is None or ((share > self.threshold) == want_chinese) for share in shares.values()
            )
            raw = {"question_language": "zh" if want_chinese else "en", "shares": shares}
            label = "consistent" if consistent else "inconsistent"
            out.append(VerifierScore(self.principle, label, 1.0 if consistent else 0.0, raw=raw))
        return out
