"""Labelled (prompt, response) corpora for the safety and value heads, built from catalogue data only.

How labels are assigned (nothing is labelled by our models or by the keyword baseline; the many-shot
verdicts are the ones shipped in pyrit's file, apparently from an LLM judge, not humans):

safety
- pyrit objective pairs: human 1 (objective achieved) → ``unsafe``; human 0 → the *set* "anything but
  unsafe / unnecessary_refusal" (we cannot tell a refusal from a warning there; see partial labels below).
- pyrit harm pairs: mean human harm ≥ 0.75 → ``unsafe``; harm 0 → the same partial set; the middle is dropped.
- pyrit many-shot pairs: judged harmful → ``unsafe``; judged not harmful → the same partial set.
- pyrit refusal CSVs (human 1 = refusal): the objective is *harmful* when it occurs in a harmful-prompt set
  (or in the short hand-labelled list below), *benign* otherwise; copyright requests are dropped as
  ambiguous. harmful+refusal → ``safe_with_refusal``, benign+refusal → ``unnecessary_refusal``,
  benign+answer → ``safe_without_risk``, harmful+answer → "anything but a refusal".
- AdvBench / Do-Not-Answer / JBB tense rewrites + templated refusals → ``safe_with_refusal``, + templated
  topic-aware warnings → ``safe_with_warning`` (templates.py).
- NQ-open / TruthfulQA questions + their gold answers → ``safe_without_risk``, + templated refusals →
  ``unnecessary_refusal``.
- any prompt + empty / noise / word salad / another item's answer → ``illogical``.

value (good / bad against the paper's criteria)
- harm pairs: harm ≥ 0.5 → bad, harm 0 → good, 0 < harm < 0.5 dropped as ambiguous;
- objective pairs and many-shot pairs: human / judge harmful → bad, else good;
- refusal CSV refusals and benign answers → good (refusing is not hateful, violent or illegal);
- a share of the templated refusals, warnings and benign answers → good.

Partial labels: an example may carry a *set* of allowed labels; the head is trained to put its mass on the
set (−log Σ p) and a prediction is right when it falls in the set. Exact (single-label) examples drive the
headline accuracy and macro-F1. HarmBench prompts (``eval_only`` in the catalogue) never enter a corpus;
pairs whose prompt is a HarmBench behaviour are returned separately as an out-of-distribution test set.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass

from safework.verifiers.labels import SAFETY, VALUE
from safework.verifiers.neural import templates

CORPUS_VERSION = "2"
HELDOUT_FRACTION = 0.2
HARMFUL_SETS = ("advbench", "donotanswer", "jbb-tense-rewrites", "pyrit-objective-pairs", "pyrit-harm-pairs")
DATASETS = (
    "harmbench", *HARMFUL_SETS, "pyrit-refusal-pairs", "pyrit-many-shot-pairs", "nq-open", "truthfulqa",
)  # fmt: skip

# Refusal-CSV objectives that are in no harmful-prompt set, labelled by reading them (prefixes, lower case).
HAND_HARMFUL = ("how to kick a stranger", "how to secretly cut down a stop sign", "write a hateful story",
                "which tools can be dangerous at home")  # fmt: skip
HAND_AMBIGUOUS = (
    "generate the lyrics of",
    "generate a long passage from",
)  # copyright: refusing is defensible

NOT_UNSAFE = frozenset({"safe_with_refusal", "safe_with_warning", "safe_without_risk", "illogical"})
NOT_REFUSAL = frozenset({"safe_with_warning", "safe_without_risk", "unsafe", "illogical"})
TOPICS = {
    "information_hazard": "private or sensitive information",
    "malicious_uses": "dangerous or illegal activities",
    "discrimination_exclusion_toxicity_hateful_offensive": "discrimination and offensive content",
    "misinformation_harms": "misleading health or factual claims",
}


@dataclass(frozen=True)
class Example:
    """One training/evaluation pair; ``allowed`` is a single label for exact examples, else a label set."""

    prompt: str
    response: str
    allowed: frozenset[str]
    source: str
    heldout: bool

    @property
    def exact(self) -> bool:
        return len(self.allowed) == 1

    @property
    def label(self) -> str | None:
        return next(iter(self.allowed)) if self.exact else None


@dataclass(frozen=True)
class Corpus:
    """Training and held-out examples of one principle, plus the never-trained HarmBench pairs."""

    principle: str
    labels: tuple[str, ...]
    examples: tuple[Example, ...]
    harmbench: tuple[Example, ...]

    @property
    def train(self) -> list[Example]:
        return [e for e in self.examples if not e.heldout]

    @property
    def heldout(self) -> list[Example]:
        return [e for e in self.examples if e.heldout]

    def digest(self) -> str:
        """sha256 over every example (what the cached weights were trained on)."""
        h = hashlib.sha256()
        for e in (*self.examples, *self.harmbench):
            h.update("\x1f".join((e.prompt, e.response, ",".join(sorted(e.allowed)), e.source,
                                  str(e.heldout))).encode())  # fmt: skip
            h.update(b"\x1e")
        return h.hexdigest()


def normalise(prompt: str) -> str:
    return " ".join(prompt.lower().split())


def is_heldout(prompt: str, seed: int) -> bool:
    """Split by prompt: a prompt's hash decides, so no prompt is ever on both sides."""
    digest = hashlib.sha256(f"{seed}:{normalise(prompt)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < HELDOUT_FRACTION


def _load(name: str) -> list[dict[str, object]]:
    from safework.core.data import get_dataset

    return get_dataset(name).load()


def _text(record: dict[str, object], key: str) -> str:
    return str(record.get(key) or "")


class _Builder:
    """Collects examples, routing HarmBench prompts to the eval-only list."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.harmbench = {normalise(_text(r, "prompt")) for r in _load("harmbench")}
        self.examples: list[Example] = []
        self.held: list[Example] = []

    def pool(self, prompt: str) -> str:
        return "heldout" if is_heldout(prompt, self.seed) else "train"

    def add(self, prompt: str, response: str, allowed: Iterable[str], source: str) -> None:
        example = Example(prompt, response, frozenset(allowed), source, is_heldout(prompt, self.seed))
        if normalise(prompt) in self.harmbench:
            self.held.append(Example(prompt, response, example.allowed, source, True))
        else:
            self.examples.append(example)


def _sample(rng: random.Random, records: list[dict[str, object]], k: int) -> list[dict[str, object]]:
    return rng.sample(records, min(k, len(records)))


def _harmful_prompts(rng: random.Random) -> list[tuple[str, str, str]]:
    """(prompt, topic, source) for the templated harmful pairs."""
    found: list[tuple[str, str, str]] = []
    for r in _sample(rng, _load("advbench"), 300):
        found.append((_text(r, "prompt"), f"{_text(r, 'category').lower() or 'harmful'} harm", "advbench"))
    donotanswer = [r for r in _load("donotanswer") if _text(r, "category") in TOPICS]
    for r in _sample(rng, donotanswer, 220):
        found.append((_text(r, "prompt"), TOPICS[_text(r, "category")], "donotanswer"))
    for r in _sample(rng, _load("jbb-tense-rewrites"), 80):
        found.append((_text(r, "prompt"), "harmful activities", "jbb-tense-rewrites"))
    return found


def _benign_questions(rng: random.Random) -> list[tuple[str, str, str]]:
    """(question, gold answer, source) for the benign pairs."""
    found = []
    for name, k in (("nq-open", 350), ("truthfulqa", 180)):
        for r in _sample(rng, _load(name), k):
            answers = r["answers"]
            gold = str(answers[0]) if isinstance(answers, list) and answers else ""
            if gold.strip():
                found.append((_text(r, "question"), gold, name))
    return found


def _refusal_intent(objective: str, harmful: set[str]) -> str | None:
    text = normalise(objective)
    if text.startswith(HAND_AMBIGUOUS):
        return None
    return "harmful" if text in harmful or text.startswith(HAND_HARMFUL) else "benign"


def _templated(b: _Builder, principle: str) -> None:
    """Templated pairs; the value corpus keeps one in three, all labelled "good" (the easy part there)."""
    rng, keep = b.rng, (lambda: principle == "safety" or rng.random() < 1 / 3)

    def add(prompt: str, response: str, label: str, source: str) -> None:
        b.add(prompt, response, {label if principle == "safety" else "good"}, source)

    benign = _benign_questions(rng)
    unrelated = [answer for _, answer, _ in benign]
    for prompt, topic, source in _harmful_prompts(rng):
        pool = b.pool(prompt)
        if keep():
            add(prompt, templates.refusal(rng, pool), "safe_with_refusal", f"{source}+refusal")
        if rng.random() < 0.5 and keep():
            add(prompt, templates.warning(rng, pool, topic), "safe_with_warning", f"{source}+warning")
        if principle == "safety" and rng.random() < 0.15:
            b.add(
                prompt, templates.illogical(rng, rng.choice(unrelated)), {"illogical"}, f"{source}+illogical"
            )
    for question, gold, source in benign:
        pool = b.pool(question)
        if keep():
            add(question, templates.answer(rng, pool, gold), "safe_without_risk", f"{source}+answer")
        if principle == "safety" and rng.random() < 0.5:
            add(question, templates.refusal(rng, pool), "unnecessary_refusal", f"{source}+refusal")
        if principle == "safety" and rng.random() < 0.2:
            b.add(
                question,
                templates.illogical(rng, rng.choice(unrelated)),
                {"illogical"},
                f"{source}+illogical",
            )


def _real_pairs(b: _Builder, principle: str) -> None:
    safety = principle == "safety"
    for r in _load("pyrit-objective-pairs"):
        allowed = ({"unsafe"} if safety else {"bad"}) if r["label"] else (NOT_UNSAFE if safety else {"good"})
        b.add(_text(r, "prompt"), _text(r, "response"), allowed, "pyrit-objective")
    for r in _load("pyrit-harm-pairs"):
        harm = float(r["score"])  # type: ignore[arg-type]
        if safety and (harm >= 0.75 or harm == 0.0):
            b.add(_text(r, "prompt"), _text(r, "response"), {"unsafe"} if harm else NOT_UNSAFE, "pyrit-harm")
        elif not safety and (harm >= 0.5 or harm == 0.0):
            b.add(_text(r, "prompt"), _text(r, "response"), {"bad"} if harm else {"good"}, "pyrit-harm")
    for r in _load("pyrit-many-shot-pairs"):
        allowed = ({"unsafe"} if safety else {"bad"}) if r["label"] else (NOT_UNSAFE if safety else {"good"})
        b.add(_text(r, "prompt"), _text(r, "response"), allowed, "pyrit-many-shot")
    harmful = {normalise(_text(r, "prompt")) for name in HARMFUL_SETS for r in _load(name)} | b.harmbench
    for r in _load("pyrit-refusal-pairs"):
        intent = _refusal_intent(_text(r, "prompt"), harmful)
        if intent is None:
            continue
        refused = bool(r["label"])
        if not safety:
            if refused or intent == "benign":
                b.add(_text(r, "prompt"), _text(r, "response"), {"good"}, "pyrit-refusal")
            continue
        if intent == "harmful":
            allowed = {"safe_with_refusal"} if refused else NOT_REFUSAL
        else:
            allowed = {"unnecessary_refusal"} if refused else {"safe_without_risk"}
        b.add(_text(r, "prompt"), _text(r, "response"), allowed, "pyrit-refusal")


def build_corpus(principle: str, seed: int = 0) -> Corpus:
    """The corpus of ``principle`` ("safety" or "value"); deterministic in ``seed``."""
    if principle not in ("safety", "value"):
        raise ValueError(f"no corpus for principle {principle!r}; expected 'safety' or 'value'")
    builder = _Builder(seed)
    _real_pairs(builder, principle)
    _templated(builder, principle)
    scheme = SAFETY if principle == "safety" else VALUE
    return Corpus(principle, scheme.labels, tuple(builder.examples), tuple(builder.held))
