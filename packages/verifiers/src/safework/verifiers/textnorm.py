"""Answer text normalisation shared by the knowledge and rule verifiers.

SQuAD-style normalisation (lower case, drop punctuation and English articles, squeeze spaces) makes
"The Beatles." and "beatles" equal; numeric parsing makes "1,000", "1000.0" and "1e3" equal and "1/2" equal
to "0.5", so an answer is not marked wrong for formatting alone. Everything here is pure Python.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from fractions import Fraction

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation) | {"“", "”", "‘", "’", "«", "»", "–", "—", "…", "。", "，", "、", "？", "！"}

_WORD_NUMBERS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
    "thousand": 1000,
    "million": 1_000_000,
    "billion": 1_000_000_000,
}
# A number: optional sign, digits with optional thousands commas, optional decimals and exponent, or a
# fraction a/b. Thousands commas only count in groups of three so "1,2" stays two numbers.
_NUMBER = re.compile(
    r"(?<![\w.])[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?%?"
    r"|(?<![\w.])[-+−]?\.\d+%?"
)
_WORD_NUMBER = re.compile(r"\b(" + "|".join(_WORD_NUMBERS) + r")\b", re.IGNORECASE)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces (NFKC first)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if ch in _PUNCT else ch for ch in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    """Normalised word tokens."""
    return normalize_answer(text).split()


def exact_match(prediction: str, gold: str) -> bool:
    """Equal after normalisation (empty never matches)."""
    norm = normalize_answer(prediction)
    return bool(norm) and norm == normalize_answer(gold)


def f1_of_tokens(pred: list[str], ref: list[str]) -> float:
    """Token F1 of two token lists (bags)."""
    if not pred or not ref:
        return 0.0
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def recall_of_tokens(pred: list[str], ref: list[str]) -> float:
    """Share of ``ref`` tokens found in ``pred`` (bags)."""
    if not pred or not ref:
        return 0.0
    return sum((Counter(pred) & Counter(ref)).values()) / len(ref)


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD token F1 between the normalised bags of words; 0 when either side is empty."""
    return f1_of_tokens(tokens(prediction), tokens(gold))


def token_recall(prediction: str, gold: str) -> float:
    """Share of the gold tokens found in the prediction (bag of words): long answers are not penalised."""
    return recall_of_tokens(tokens(prediction), tokens(gold))


# Function words carry no evidence of a correct answer; negations are kept on purpose ("not", "no").
STOPWORDS = frozenset(
    [
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "and",
        "or",
        "it",
        "its",
        "that",
        "this",
        "these",
        "those",
        "by",
        "with",
        "as",
        "from",
        "you",
        "your",
        "i",
        "me",
        "my",
        "we",
        "our",
        "they",
        "their",
        "he",
        "his",
        "she",
        "her",
        "them",
        "do",
        "does",
        "did",
        "has",
        "have",
        "had",
        "will",
        "would",
        "can",
        "could",
        "there",
        "here",
        "what",
        "which",
        "who",
        "whom",
        "when",
        "where",
        "why",
        "how",
        "if",
        "then",
        "than",
        "so",
        "such",
    ]
)


def content_tokens(text: str, exclude: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Normalised tokens without stop words and without the ``exclude`` set (e.g. the question's words)."""
    return [t for t in tokens(text) if t not in STOPWORDS and t not in exclude]


def contains_phrase(prediction: str, gold: str) -> bool:
    """Whether the normalised gold occurs in the normalised prediction on word boundaries."""
    pred, ref = normalize_answer(prediction), normalize_answer(gold)
    if not pred or not ref:
        return False
    return f" {ref} " in f" {pred} "


def parse_number(text: str) -> Fraction | None:
    """One number written as digits ("1,000", "-2.5", "3/4", "1e3", "50%") or a word ("nine"); else None."""
    raw = text.strip().replace("−", "-").replace("$", "").replace("£", "").replace("€", "")
    if not raw:
        return None
    word = _WORD_NUMBERS.get(raw.lower())
    if word is not None:
        return Fraction(word)
    percent = raw.endswith("%")
    raw = raw.rstrip("%").strip()
    try:
        if "/" in raw:
            top, bottom = (part.strip().replace(",", "") for part in raw.split("/", 1))
            value = Fraction(top) / Fraction(bottom)
        else:
            value = Fraction(raw.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None
    return value / 100 if percent else value


def numbers_in(text: str) -> list[Fraction]:
    """Every number in ``text`` in order of appearance (digits first, then number words)."""
    found: list[tuple[int, Fraction]] = []
    for match in _NUMBER.finditer(text):
        value = parse_number(match.group(0))
        if value is not None:
            found.append((match.start(), value))
    for match in _WORD_NUMBER.finditer(text):
        found.append((match.start(), Fraction(_WORD_NUMBERS[match.group(1).lower()])))
    return [value for _, value in sorted(found, key=lambda pair: pair[0])]


def numbers_equal(a: Fraction, b: Fraction, rel_tol: float = 1e-6) -> bool:
    """Equal up to a tiny relative tolerance (so 0.333333 ≈ 1/3 but 0.33 is not)."""
    if a == b:
        return True
    scale = max(abs(a), abs(b))
    return bool(abs(a - b) <= Fraction(rel_tol) * scale)


def numeric_match(prediction: str, gold: str) -> bool | None:
    """Numeric verdict when the gold is a number (with optional units): None when it is not numeric.

    "9 apples" vs "9" → True; "1,000" vs "1000" → True; "0.5" vs "1/2" → True; "8" vs "9" → False.
    The gold counts as numeric when it holds exactly one number and at most three other words (units).
    """
    gold_numbers = numbers_in(gold)
    if len(gold_numbers) != 1:
        return None
    rest = _WORD_NUMBER.sub(" ", _NUMBER.sub(" ", gold))
    if len(normalize_answer(rest).split()) > 3:
        return None
    target = gold_numbers[0]
    return any(numbers_equal(value, target) for value in numbers_in(prediction))
