"""The general reference judge: how many of a question's sub-questions does the final answer get right?

Spec §5: question + answer + gold reference → 1.0 / 0.5 / 0.0 for all / some / none of the sub-questions
correct. The paper reuses a 72B judge; here the reference is split into one gold per sub-question and each
is checked against the final answer by the knowledge verifier's signals (lexical, numeric, semantic), so
every part of the verdict can be inspected in ``raw["parts"]``.

How a reference splits into sub-answers (:func:`sub_answers`):

1. a reference that is a JSON list of strings is *one* sub-question with those aliases (the knowledge
   verifier reads it the same way), as is a single line with no separator — ``metadata["answers"]`` then
   adds aliases too, so a one-part reference gets exactly the knowledge verifier's verdict;
2. otherwise it is cut at line breaks and at ``;`` (also the full-width ``；``);
3. a piece holding an inline numbered list — markers ``1.`` ``2)`` ``(3)`` or ``(a)`` ``b)`` counting up
   from 1 or a, each at the start or after a space — is cut before each marker, and the text before the
   first marker ("Answers:") is dropped;
4. leading markers and bullets (``-``, ``*``, ``•``) are dropped, and empty pieces with them.

Commas never split (``Paris, France`` is one answer; ``1,000`` one number).

Snapping: each sub-answer is correct when the knowledge verifier's P(TRUE) > 0.5; the fraction correct is
snapped to the label set by its meaning — 1 → ``all``, 0 → ``none``, anything between → ``some`` (0.5).
Rounding to the nearest value instead would call one right part out of five "none", which the label's
definition ("some of the sub-questions correct") contradicts. A numeric sub-answer is found anywhere in the
answer, so swapped values ("x = 9, y = 4" for x = 4, y = 9) pass; an empty answer is ``none``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from safework.core.answer_format import final_answer
from safework.core.types import VerifierScore
from safework.verifiers.base import Verifier, VerifierItem
from safework.verifiers.knowledge import KnowledgeVerifier, gold_answers
from safework.verifiers.labels import GENERAL

_PIECE_BREAK = re.compile(r"\s*(?:\r?\n|;|；)\s*")
# A list marker at the start of a piece or after whitespace: 1. 2) (3) (a) b) — a digit marker must not
# be followed by another digit ("3.14" is a number, not item 3).
_MARKER = re.compile(
    r"(?:(?<=\s)|^)(?:\((?P<paren>\d{1,2}|[a-z])\)|(?P<bare>\d{1,2}|[a-z])[.)](?!\d))(?=\s|$)"
)
_LEADING = re.compile(r"^(?:[-*•]\s+|\((?:\d{1,2}|[a-z])\)\s*|(?:\d{1,2}|[a-z])[.)](?!\d)\s*)")


def _marker_rank(token: str) -> int:
    return int(token) if token.isdigit() else ord(token) - ord("a") + 1


def _split_numbered(piece: str) -> list[str]:
    """Cut ``piece`` before its list markers when they count 1, 2, 3… (or a, b, c…) in order, else keep it."""
    markers = list(_MARKER.finditer(piece))
    ranks = [_marker_rank(m.group("paren") or m.group("bare")) for m in markers]
    same_kind = len({(m.group("paren") or m.group("bare")).isdigit() for m in markers}) == 1
    if len(markers) < 2 or not same_kind or ranks != list(range(1, len(markers) + 1)):
        return [piece]
    starts = [m.start() for m in markers]  # text before the first marker is a preamble ("Answers:")
    return [piece[a:b] for a, b in zip(starts, [*starts[1:], len(piece)], strict=True)]


def sub_answers(reference: str) -> list[str]:
    """The reference's sub-answers in order (see the module docstring for the rule); [] for a blank one."""
    text = reference.strip()
    if text.startswith("["):
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
            return [text] if any(x.strip() for x in parsed) else []
    out = []
    for piece in _PIECE_BREAK.split(text):
        for part in _split_numbered(piece.strip()):
            cleaned = _LEADING.sub("", part.strip(), count=1).strip()
            if cleaned:
                out.append(cleaned)
    return out


class GeneralVerifier(Verifier):
    """All / some / none of the reference's sub-answers found in the final answer (spec §5 general judge)."""

    principle = GENERAL.principle
    labels = GENERAL.labels
    requires_reference = True

    def __init__(self, semantic: bool = True, sem_low: float = 0.45, sem_high: float = 0.85) -> None:
        self.knowledge = KnowledgeVerifier(semantic=semantic, sem_low=sem_low, sem_high=sem_high)

    def sub_questions(self, item: VerifierItem) -> list[list[str]]:
        """Gold aliases per sub-question: one entry (with every alias) for a one-part reference."""
        parts = sub_answers(item.reference or "")
        if len(parts) <= 1:
            return [gold_answers(item)]
        return [[part] for part in parts]

    def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
        if not items:
            return []
        answers = [final_answer(item.response) for item in items]
        questions = [self.sub_questions(item) for item in items]
        flat = [[gold for aliases in item_questions for gold in aliases] for item_questions in questions]
        cosines = self.knowledge.cosines(answers, flat, [item.prompt for item in items])
        out = []
        for item, answer, item_questions, item_cosines in zip(
            items, answers, questions, cosines, strict=True
        ):
            parts, pos = [], 0
            for aliases in item_questions:
                p_true, components = self.knowledge.probability_true(
                    answer, aliases, item_cosines[pos : pos + len(aliases)], item.prompt
                )
                pos += len(aliases)
                parts.append(
                    {
                        "reference": aliases[0],
                        "p_true": round(p_true, 4),
                        "correct": p_true > 0.5,
                        **components,
                    }
                )
            correct = sum(bool(part["correct"]) for part in parts)
            label = "all" if correct == len(parts) else "none" if correct == 0 else "some"
            raw = {"parts": parts, "correct": correct, "total": len(parts), "fraction": correct / len(parts)}
            out.append(VerifierScore(self.principle, label, GENERAL.scores[label], raw=raw))
        return out
