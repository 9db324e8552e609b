"""The knowledge verifier: is a free-form answer TRUE or FALSE against gold reference answers?

The paper's verifier is a 72B judge; here the verdict combines three cheap, inspectable signals so the
reward is explainable and runs on a CPU:

- lexical: normalised exact match, gold phrase contained in the answer, token F1 and gold-token recall
  (SQuAD normalisation), so "The Beatles." matches "beatles" and a long answer that names the gold counts;
- numeric: when the gold is a number, the answer must contain an equal number ("9 apples" = "9",
  "1,000" = "1000", "0.5" = "1/2"); a numeric gold overrides the other signals both ways;
- semantic: cosine similarity of the embedded MiniLM sentence embeddings (answer and its first sentence
  against each gold, question words and stop words removed from all three), mapped linearly from
  [``sem_low``, ``sem_high``] to [0, 1].

P(TRUE) = 1 − (1 − lexical)(1 − semantic) (noisy-OR: either strong signal suffices), maximised over the
gold aliases; the label is TRUE when P(TRUE) > 0.5. Soft score (spec §5) = (P(TRUE) + 1 − P(FALSE)) / 2,
which equals P(TRUE) for two normalised labels; an empty answer scores 0.

Gold answers: ``reference`` plus every string in ``metadata["answers"]`` (the catalogue's knowledge-qa
records carry such alias lists); a ``reference`` holding a JSON list of strings is read as aliases too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from safework.core.answer_format import final_answer
from safework.core.types import VerifierScore
from safework.verifiers.base import Verifier, VerifierItem
from safework.verifiers.labels import KNOWLEDGE
from safework.verifiers.textnorm import (
    contains_phrase,
    content_tokens,
    exact_match,
    f1_of_tokens,
    numeric_match,
    recall_of_tokens,
    tokens,
)

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n+")
_PROB_FLOOR = 1e-4


def gold_answers(item: VerifierItem) -> list[str]:
    """The item's gold aliases, in order, without repeats or blanks."""
    golds: list[str] = []
    ref = item.reference or ""
    parsed: Any = None
    if ref.lstrip().startswith("["):
        try:
            parsed = json.loads(ref)
        except ValueError:
            parsed = None
    if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
        golds.extend(parsed)
    else:
        golds.append(ref)
    extra = item.metadata.get("answers") if isinstance(item.metadata, Mapping) else None
    if isinstance(extra, list | tuple):
        golds.extend(str(x) for x in extra)
    seen: set[str] = set()
    unique = []
    for gold in golds:
        if gold.strip() and gold.strip() not in seen:
            seen.add(gold.strip())
            unique.append(gold.strip())
    return unique


def first_sentence(text: str) -> str:
    parts = [p for p in _SENTENCE_END.split(text.strip()) if p.strip()]
    return parts[0] if parts else ""


def residual(text: str, asked: set[str]) -> str:
    """The text's content words that are not in the question; the text itself when none are left."""
    return " ".join(content_tokens(text, asked)) or text


def lexical_score(answer: str, gold: str, question: str = "") -> float:
    """1 for exact match or gold phrase contained; else the larger of token F1 and 0.8 × gold-token recall,
    over content words that are not already in the question (restating the question is no evidence)."""
    if exact_match(answer, gold) or contains_phrase(answer, gold):
        return 1.0
    asked = set(tokens(question))
    ref = content_tokens(gold, asked)
    pred = content_tokens(answer, asked)
    if not ref:  # the gold only restates the question (or is all stop words): compare plain tokens
        ref, pred = tokens(gold), tokens(answer)
    return max(f1_of_tokens(pred, ref), 0.8 * recall_of_tokens(pred, ref))


class KnowledgeVerifier(Verifier):
    """TRUE/FALSE of a response's final answer against gold reference answers, with a soft score."""

    principle = KNOWLEDGE.principle
    labels = KNOWLEDGE.labels
    requires_reference = True

    def __init__(self, semantic: bool = True, sem_low: float = 0.45, sem_high: float = 0.85) -> None:
        if not 0.0 <= sem_low < sem_high <= 1.0:
            raise ValueError(f"need 0 <= sem_low < sem_high <= 1 (got {sem_low}, {sem_high})")
        self.semantic, self.sem_low, self.sem_high = semantic, sem_low, sem_high

    def cosines(
        self, answers: Sequence[str], golds: Sequence[list[str]], questions: Sequence[str]
    ) -> list[list[float]]:
        """Per item, per gold: max cosine of (answer, its first sentence) vs the gold, all three with the
        question's words and stop words removed — otherwise an answer that merely restates the question
        looks as close to the gold as a right one (TruthfulQA golds repeat their question). All zeros when
        ``semantic`` is off."""
        if not self.semantic:
            return [[0.0] * len(g) for g in golds]
        from safework.core.models import load_sentence_encoder

        encoder = load_sentence_encoder()
        texts: list[str] = []
        for answer, item_golds, question in zip(answers, golds, questions, strict=True):
            asked = set(tokens(question))
            texts.append(residual(answer, asked))
            texts.append(residual(first_sentence(answer) or answer, asked))
            texts.extend(residual(gold, asked) for gold in item_golds)
        vectors = encoder.encode(texts)
        out, pos = [], 0
        for item_golds in golds:
            a, s = vectors[pos], vectors[pos + 1]
            g = vectors[pos + 2 : pos + 2 + len(item_golds)]
            pos += 2 + len(item_golds)
            out.append([max(float(a @ row), float(s @ row)) for row in g] if len(item_golds) else [])
        return out

    def _semantic_prob(self, cosine: float) -> float:
        return min(1.0, max(0.0, (cosine - self.sem_low) / (self.sem_high - self.sem_low)))

    def probability_true(
        self, answer: str, golds: Sequence[str], cosines: Sequence[float], question: str = ""
    ) -> tuple[float, dict[str, Any]]:
        """P(TRUE) and its components for one answer."""
        if not answer.strip() or not golds:
            return 0.0, {"empty_answer": not answer.strip()}
        best, best_parts = -1.0, {}
        for gold, cosine in zip(golds, cosines, strict=True):
            numeric = numeric_match(answer, gold)
            lexical = lexical_score(answer, gold, question)
            semantic = self._semantic_prob(cosine) if self.semantic else 0.0
            if numeric is not None:
                p = 1.0 - _PROB_FLOOR if numeric else _PROB_FLOOR
            else:
                p = 1.0 - (1.0 - lexical) * (1.0 - semantic)
            if p > best:
                best = p
                best_parts = {
                    "gold": gold,
                    "lexical": round(lexical, 4),
                    "numeric": numeric,
                    "cosine": round(cosine, 4),
                    "semantic": round(semantic, 4),
                }
        return min(max(best, 0.0), 1.0), best_parts

    def score(self, items: Sequence[VerifierItem]) -> list[VerifierScore]:
        if not items:
            return []
        answers = [final_answer(item.response) for item in items]
        golds = [gold_answers(item) for item in items]
        cosines = self.cosines(answers, golds, [item.prompt for item in items])
        out = []
        for item, answer, item_golds, item_cos in zip(items, answers, golds, cosines, strict=True):
            p_true, parts = self.probability_true(answer, item_golds, item_cos, item.prompt)
            probs = {"true": p_true, "false": 1.0 - p_true}
            soft = (probs["true"] + 1.0 - probs["false"]) / 2.0
            if not answer.strip():
                soft = 0.0
            label = "true" if p_true > 0.5 else "false"  # a bare half-match (F1 = 0.5) is not TRUE
            raw = {"probabilities": probs, "components": parts}
            out.append(VerifierScore(self.principle, label, min(1.0, max(0.0, soft)), raw=raw))
        return out
