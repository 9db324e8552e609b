"""Labelled (prompt, response) corpora for the safety, value and normal heads, built from catalogue data.

Nothing is labelled by our own heads. Two kinds of example:

*Realistic* — responses someone (a person or another model) actually wrote; the only evidence for held-out
figures:
- pyrit objective pairs (human: did the response achieve the harmful objective?) 1 → ``unsafe``, 0 → the set
  "anything but unsafe / unnecessary refusal" (pyrit does not say whether it was a refusal or a warning);
- pyrit harm pairs: mean human harm ≥ 0.75 → ``unsafe``, harm 0 → the same set, the middle is dropped;
- pyrit many-shot pairs (a judge's verdict shipped in pyrit's file): harmful → ``unsafe``, else the set;
- pyrit refusal pairs (human: is it a refusal?): the objective is harmful when it is in a harmful-prompt set
  or in a short hand-read list; harmful+refusal → ``safe_with_refusal``, benign+refusal →
  ``unnecessary_refusal``, benign+answer → helpful-safe, harmful+answer → "anything but a refusal";
- benign requests with real long answers → helpful-safe: FiQA (human finance answers), Arena-Hard (o3-mini)
  and AlpacaEval (GPT-4) answers, split by prompt; HealthBench physician answers are evaluation-only.

"Helpful-safe" is the set {``safe_without_risk``, ``safe_with_warning``}: both map to 1.0, and a helpful
answer to a benign request may carry a practical precaution.

*Templated* (training only, never in a reported figure; :mod:`templates`): short and long refusals (some
listing safe alternatives) after harmful prompts, cautious non-answers after them (value and normal only),
refusals after benign ones, short gold answers in a sentence,
illogical text, and two label-preserving augmentations of real answers — a practical precaution added to a
benign answer (still helpful-safe: warnings after benign requests are fine) and a hollow disclaimer before
a harmful answer (still ``unsafe``: a warning does not make operational help safe).

*Generated* (training only, safety only; :mod:`generated`): the embedded model's answers to consumer health
questions, which no carrier answers — a benign health question answered is helpful-safe.

value (good / bad against the paper's criteria): harm ≥ 0.5 / achieved objectives / harmful many-shot → bad;
harm 0, refusals of harmful requests, helpful benign answers → good; a refusal of a *benign* request → bad
(it fails the user; the reward must not prefer refusing to helping); empty, broken or off-topic text → bad.

normal (helpfulness, spec §5 "helpful without warning" → 1, other → 0): helpful answers to benign requests
(with or without a practical precaution, which is part of the help) → ``helpful``; refusals, cautious
non-answers, illogical or off-topic text → ``other``.

A (prompt, response) pair that two files share (pyrit's objective and refusal files overlap) is kept once,
with the first file's verdict, so it is neither trained on twice nor counted twice in a figure.

Split: by prompt hash (:func:`is_heldout`), so no prompt is on both sides. HarmBench prompts (eval-only in
the catalogue) never enter a corpus; pairs whose prompt is a HarmBench behaviour form a separate test set.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from safework.verifiers.labels import NORMAL, SAFETY, VALUE
from safework.verifiers.neural import generated, templates

CORPUS_VERSION = "5"
HELDOUT_FRACTION = 0.2
PRINCIPLES = ("safety", "value", "normal")
HARMFUL_SETS = ("advbench", "donotanswer", "jbb-tense-rewrites", "pyrit-objective-pairs", "pyrit-harm-pairs")
PAIR_SETS = ("pyrit-refusal-pairs", "pyrit-many-shot-pairs", "uncensorbench-pairs", "rho-contrast-pairs")
ANSWER_SETS = (
    "fiqa",
    "arena-hard-o3mini",
    "alpacaeval-gpt4",
)  # benign request → real answer, split by prompt
EVAL_ONLY_ANSWER_SETS = ("healthbench-ideal",)  # never trained on (its file forbids it): out-of-distribution
# Samples keep cold training within minutes on 2 cores (embedding dominates; answers are long).
ANSWER_SAMPLE, EVAL_ONLY_SAMPLE = 450, 246
DATASETS = (
    "harmbench",
    *HARMFUL_SETS,
    *PAIR_SETS,
    "nq-open",
    "truthfulqa",
    *ANSWER_SETS,
    *EVAL_ONLY_ANSWER_SETS,
)

# Refusal-CSV objectives that are in no harmful-prompt set, labelled by reading them (prefixes, lower case).
HAND_HARMFUL = (
    "how to kick a stranger",
    "how to secretly cut down a stop sign",
    "write a hateful story",
    "which tools can be dangerous at home",
)
HAND_AMBIGUOUS = (
    "generate the lyrics of",
    "generate a long passage from",
)  # copyright: refusing is defensible

HELPFUL_SAFE = frozenset({"safe_without_risk", "safe_with_warning"})
NOT_UNSAFE = frozenset({"safe_with_refusal", "safe_with_warning", "safe_without_risk", "illogical"})
NOT_REFUSAL = frozenset({"safe_with_warning", "safe_without_risk", "unsafe", "illogical"})
TOPICS = {
    "information_hazard": "private or sensitive information",
    "malicious_uses": "dangerous or illegal activities",
    "discrimination_exclusion_toxicity_hateful_offensive": "discrimination and offensive content",
    "misinformation_harms": "misleading health or factual claims",
}

# The response kinds every principle labels from (one safety-style verdict per example, mapped below).
(
    REFUSAL,
    BENIGN_REFUSAL,
    HELPFUL,
    COMPLIANT,
    NOT_UNSAFE_KIND,
    ANSWERED,
    CAUTIOUS,
    ILLOGICAL,
    DECLINED,
    LOOKALIKE_REFUSAL,
    OFF_TOPIC,
    GENERATED_HELPFUL,
) = (
    "refusal",
    "benign-refusal",
    "helpful",
    "compliant",
    "not-unsafe",
    "answered",
    "cautious",
    "illogical",
    "declined",
    "lookalike-refusal",
    "off-topic",
    "generated-helpful",
)
_SAFETY_SETS = {
    REFUSAL: frozenset({"safe_with_refusal"}),
    BENIGN_REFUSAL: frozenset({"unnecessary_refusal"}),
    HELPFUL: HELPFUL_SAFE,
    COMPLIANT: frozenset({"unsafe"}),
    NOT_UNSAFE_KIND: NOT_UNSAFE,
    ANSWERED: NOT_REFUSAL,
    # no CAUTIOUS: templated cautious non-answers after harmful prompts taught "harmful request + an answer
    # that does not refuse → safe_with_warning", and real compliant answers with a disclaimer took that
    # path (compliant-group recall 70 % with them, 80 % without, on the realistic held-out split)
    ILLOGICAL: frozenset({"illogical"}),
    DECLINED: frozenset({"safe_with_refusal", "safe_with_warning"}),
    # the embedded model's answers to consumer health questions (neural/generated.py): safe, if not right
    GENERATED_HELPFUL: HELPFUL_SAFE,
}
_VALUE_SETS = {
    REFUSAL: {"good"},
    BENIGN_REFUSAL: {"bad"},
    HELPFUL: {"good"},
    COMPLIANT: {"bad"},
    NOT_UNSAFE_KIND: {"good"},
    CAUTIOUS: {"good"},
    DECLINED: {"good"},
    ILLOGICAL: {"bad"},
    LOOKALIKE_REFUSAL: {"bad"},
    OFF_TOPIC: {"bad"},
}
# LOOKALIKE_REFUSAL and OFF_TOPIC are value's and normal's only: safety would call the first an unnecessary
# refusal, but teaching it that on rho's look-alikes made it distrust practical answers after any
# dangerous-sounding question (the wasp-nest answer fell to 0.60); whether an answer is on topic is not a
# safety question.
_NORMAL_SETS = {
    REFUSAL: {"other"},
    BENIGN_REFUSAL: {"other"},
    HELPFUL: {"helpful"},
    CAUTIOUS: {"other"},
    ILLOGICAL: {"other"},
    DECLINED: {"other"},
    LOOKALIKE_REFUSAL: {"other"},
    OFF_TOPIC: {"other"},
}


# Groups whose answers keep their verdict when cut to their opening sentences. Not compliant answers: their
# openings are often a harmless "Sure, here is an overview", and calling that unsafe teaches the wrong cue.
SHORTENED_GROUPS = ("benign-helpful", "harmful-refusal")
GROUP_KINDS = {"benign-helpful": HELPFUL, "harmful-refusal": DECLINED}


@dataclass(frozen=True)
class Example:
    """One pair; ``allowed`` is a single label for exact examples, else a label set.

    ``group`` names the kind of response for per-group figures (e.g. ``harmful-refusal``); ``realistic``
    is False for templated text, which never counts as evidence."""

    prompt: str
    response: str
    allowed: frozenset[str]
    source: str
    heldout: bool
    group: str
    realistic: bool

    @property
    def exact(self) -> bool:
        return len(self.allowed) == 1

    @property
    def label(self) -> str | None:
        return next(iter(self.allowed)) if self.exact else None


@dataclass(frozen=True)
class Corpus:
    """Training and held-out examples of one principle, plus the never-trained evaluation-only pairs."""

    principle: str
    labels: tuple[str, ...]
    examples: tuple[Example, ...]
    eval_only: tuple[Example, ...]  # HarmBench pairs and the eval-only answer sets: never trained on

    @property
    def train(self) -> list[Example]:
        return [e for e in self.examples if not e.heldout]

    @property
    def heldout(self) -> list[Example]:
        """Held-out *realistic* examples: the only ones figures are reported on."""
        return [e for e in self.examples if e.heldout and e.realistic]

    @property
    def evaluation(self) -> list[Example]:
        """Every realistic example no head ever trains on: the held-out split plus the HarmBench pairs."""
        return self.heldout + [e for e in self.eval_only if e.realistic]

    def digest(self) -> str:
        """sha256 over every example (what the cached weights were trained on)."""
        h = hashlib.sha256()
        for e in (*self.examples, *self.eval_only):
            fields = (
                e.prompt,
                e.response,
                ",".join(sorted(e.allowed)),
                e.source,
                str(e.heldout),
                e.group,
                str(e.realistic),
            )
            h.update("\x1f".join(fields).encode())
            h.update(b"\x1e")
        return h.hexdigest()


def normalise(prompt: str) -> str:
    return " ".join(prompt.lower().split())


def is_heldout(prompt: str, seed: int = 0) -> bool:
    """Split by prompt: a prompt's hash decides, so no prompt is ever on both sides."""
    digest = hashlib.sha256(f"{seed}:{normalise(prompt)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < HELDOUT_FRACTION


def _load(name: str) -> list[dict[str, object]]:
    from safework.core.data import get_dataset

    return get_dataset(name).load()


def _text(record: dict[str, object], key: str) -> str:
    return str(record.get(key) or "")


def _first_answer(record: dict[str, object]) -> str:
    answers = record.get("answers")
    return str(answers[0]) if isinstance(answers, list) and answers else ""


class _Builder:
    """Collects examples of one principle from response kinds, routing HarmBench prompts to the test list."""

    def __init__(self, principle: str, seed: int) -> None:
        self.principle, self.seed = principle, seed
        self.rng = random.Random(seed)
        sets: dict[str, Mapping[str, Iterable[str]]] = {
            "safety": _SAFETY_SETS,
            "value": _VALUE_SETS,
            "normal": _NORMAL_SETS,
        }
        self.sets = sets[principle]
        self.harmbench = {normalise(_text(r, "prompt")) for r in _load("harmbench")}
        self.examples: list[Example] = []
        self.held: list[Example] = []
        self.seen: set[tuple[str, str]] = set()

    def pool(self, prompt: str) -> str:
        return "heldout" if is_heldout(prompt, self.seed) else "train"

    def templated(self, prompt: str, response: str, kind: str, source: str) -> None:
        """Add a templated or augmented pair: training only, never counted as evidence."""
        self.add(prompt, response, kind, source, "templated", False)

    def add(self, prompt: str, response: str, kind: str, source: str, group: str, realistic: bool) -> None:
        allowed = self.sets.get(kind)
        pair = (normalise(prompt), response.strip())
        if allowed is None or pair in self.seen:
            return  # this principle has no verdict for this kind of response, or the pair is in already
        self.seen.add(pair)
        example = Example(
            prompt, response, frozenset(allowed), source, is_heldout(prompt, self.seed), group, realistic
        )
        if normalise(prompt) in self.harmbench:
            self.held.append(Example(prompt, response, example.allowed, source, True, group, realistic))
        else:
            self.examples.append(example)


def _refusal_intent(objective: str, harmful: set[str]) -> str | None:
    text = normalise(objective)
    if text.startswith(HAND_AMBIGUOUS):
        return None
    return "harmful" if text in harmful or text.startswith(HAND_HARMFUL) else "benign"


def _not_achieved(prompt: str, response: str) -> tuple[str, str]:
    """Kind and group of a response that did not achieve a harmful objective (human or judge verdict).

    When it opens with a refusal (the keyword rule decides, never a trained head) it is a real refusal of a
    harmful request: refusal or cautious decline, not "safe without risk". Otherwise it stays the set."""
    from safework.verifiers.neural import keyword

    if keyword.classify(prompt, response) in ("safe_with_refusal", "unnecessary_refusal"):
        return DECLINED, "harmful-refusal"
    return NOT_UNSAFE_KIND, "harmful-not-achieved"


def _real_pairs(b: _Builder) -> None:
    """Human- and judge-labelled pairs: pyrit, uncensorbench, rho contrast pairs."""
    for name, source in (
        ("pyrit-objective-pairs", "pyrit-objective"),
        ("pyrit-many-shot-pairs", "pyrit-many-shot"),
    ):
        for r in _load(name):
            prompt, response = _text(r, "prompt"), _text(r, "response")
            if r["label"]:
                b.add(prompt, response, COMPLIANT, source, "harmful-compliant", True)
            else:
                kind, group = _not_achieved(prompt, response)
                b.add(prompt, response, kind, source, group, True)
    for r in _load("pyrit-harm-pairs"):
        harm = float(r["score"])  # type: ignore[arg-type]
        prompt, response = _text(r, "prompt"), _text(r, "response")
        if harm >= 0.75 or (b.principle == "value" and harm >= 0.5):
            b.add(prompt, response, COMPLIANT, "pyrit-harm", "harmful-compliant", True)
        elif harm == 0.0:
            kind, group = _not_achieved(prompt, response)
            b.add(prompt, response, kind, "pyrit-harm", group, True)
    for r in _load("uncensorbench-pairs"):  # one refusal (label 1) and one compliant answer per request
        kind, group = (REFUSAL, "harmful-refusal") if r["label"] else (COMPLIANT, "harmful-compliant")
        b.add(_text(r, "prompt"), _text(r, "response"), kind, "uncensorbench", group, True)
    for r in _load("rho-contrast-pairs"):  # benign question + answer vs harmful look-alike + compliance
        kind, group = (COMPLIANT, "harmful-compliant") if r["label"] else (HELPFUL, "benign-helpful")
        b.add(_text(r, "prompt"), _text(r, "response"), kind, "rho-contrast", group, True)
    harmful = {normalise(_text(r, "prompt")) for name in HARMFUL_SETS for r in _load(name)} | b.harmbench
    for r in _load("pyrit-refusal-pairs"):
        intent = _refusal_intent(_text(r, "prompt"), harmful)
        if intent is None:
            continue
        refused = bool(r["label"])
        if intent == "harmful":
            kind, group = (REFUSAL, "harmful-refusal") if refused else (ANSWERED, "harmful-answered")
        else:
            kind, group = (BENIGN_REFUSAL, "benign-refusal") if refused else (HELPFUL, "benign-helpful")
        b.add(_text(r, "prompt"), _text(r, "response"), kind, "pyrit-refusal", group, True)


def _benign_answers(b: _Builder) -> list[tuple[str, str, str]]:
    """(request, real answer, source): FiQA human answers, Arena-Hard and AlpacaEval model answers."""
    found = [(_text(r, "question"), _first_answer(r), "fiqa") for r in _load("fiqa")]
    for name in ANSWER_SETS[1:]:
        sample = random.Random(b.seed).sample(_load(name), ANSWER_SAMPLE)
        found += [(_text(r, "prompt"), _text(r, "response"), name) for r in sample]
    return [(q, a, s) for q, a, s in found if q.strip() and a.strip()]


def _harmful_prompts(rng: random.Random) -> list[tuple[str, str, str]]:
    """(prompt, topic, source) for the templated harmful pairs."""
    found: list[tuple[str, str, str]] = []
    for r in rng.sample(_load("advbench"), 300):
        found.append((_text(r, "prompt"), f"{_text(r, 'category').lower() or 'harmful'} harm", "advbench"))
    donotanswer = [r for r in _load("donotanswer") if _text(r, "category") in TOPICS]
    for r in rng.sample(donotanswer, 220):
        found.append((_text(r, "prompt"), TOPICS[_text(r, "category")], "donotanswer"))
    for r in rng.sample(_load("jbb-tense-rewrites"), 80):
        found.append((_text(r, "prompt"), "harmful activities", "jbb-tense-rewrites"))
    return found


def _templated(b: _Builder, benign: list[tuple[str, str, str]]) -> None:
    rng = b.rng
    short_answers = []
    for name, k in (("nq-open", 350), ("truthfulqa", 180)):
        for r in rng.sample(_load(name), k):
            gold = _first_answer(r)
            if gold.strip():
                short_answers.append((_text(r, "question"), gold, name))
    unrelated = [a for _, a, _ in short_answers] + [a for _, a, _ in benign[:200]]
    for prompt, topic, source in _harmful_prompts(rng):
        pool = b.pool(prompt)
        style = rng.random()
        if style < 0.4:
            refusal = templates.long_refusal(rng, pool, topic)
        elif style < 0.7:
            refusal = templates.refusal_with_alternatives(rng, pool, topic)
        else:
            refusal = templates.refusal(rng, pool)
        b.templated(prompt, refusal, REFUSAL, f"{source}+refusal")
        if rng.random() < 0.5:
            b.templated(prompt, templates.warning(rng, pool, topic), CAUTIOUS, f"{source}+warning")
        if rng.random() < 0.15:
            off = templates.illogical(rng, rng.choice(unrelated))
            b.templated(prompt, off, ILLOGICAL, f"{source}+illogical")
    for question, gold, source in short_answers:
        pool = b.pool(question)
        b.templated(question, templates.answer(rng, pool, gold), HELPFUL, f"{source}+answer")
        if rng.random() < 0.4:
            b.templated(question, templates.refusal(rng, pool), BENIGN_REFUSAL, f"{source}+refusal")
        if rng.random() < 0.2:
            off = templates.illogical(rng, rng.choice(unrelated))
            b.templated(question, off, ILLOGICAL, f"{source}+illogical")
    for question, answer, source in benign:
        if is_heldout(question, b.seed):
            continue  # augment training answers only: held-out real answers stay untouched
        pool = "train"
        if rng.random() < 0.4:
            b.templated(question, templates.with_caution(rng, pool, answer), HELPFUL, f"{source}+caution")
        if rng.random() < 0.3:
            b.templated(question, templates.refusal(rng, pool), BENIGN_REFUSAL, f"{source}+refusal")
    # the opening of a real training answer keeps its verdict: a short helpful answer is as safe as a long
    # one, a refusal's first sentences are still a refusal (length must not decide the label)
    for e in [e for e in b.examples if e.realistic and not e.heldout and e.group in SHORTENED_GROUPS]:
        opening = templates.opening(e.response)
        if opening and opening != e.response.strip() and rng.random() < 0.5:
            b.templated(e.prompt, opening, GROUP_KINDS[e.group], f"{e.source}+opening")
    # every real compliant training answer also appears with a hollow disclaimer: still unsafe
    compliant = [e for e in b.examples if e.group == "harmful-compliant" and e.realistic and not e.heldout]
    for e in compliant:
        with_disclaimer = templates.with_disclaimer(rng, "train", e.response)
        b.templated(e.prompt, with_disclaimer, COMPLIANT, "compliant+disclaimer")
    # a legitimate request that only sounds dangerous (rho's benign look-alikes), refused: fails the user
    real = [e for e in b.examples if e.realistic and not e.heldout]
    for e in [e for e in real if e.source == "rho-contrast" and e.group == "benign-helpful"]:
        if rng.random() < 0.5:
            refusal = templates.refusal(rng, "train")
        else:
            refusal = templates.long_refusal(rng, "train", "this subject")
        b.templated(e.prompt, refusal, LOOKALIKE_REFUSAL, "rho-contrast+refusal")
    # a fluent answer to another request (a refusal, a helpful answer, a one-line factual answer) is no
    # answer to this one
    answers = [e.response for e in real if e.group in ("benign-helpful", "harmful-refusal")]
    answers += [e.response for e in b.examples if e.source.endswith("+answer") and not e.heldout]
    for e in rng.sample(real, min(len(real), 600)):
        other = rng.choice(answers)
        if other != e.response:
            b.templated(e.prompt, other, OFF_TOPIC, f"{e.source}+off-topic")


def build_corpus(principle: str, seed: int = 0) -> Corpus:
    """The corpus of ``principle`` (safety, value or normal); deterministic in ``seed``."""
    if principle not in PRINCIPLES:
        raise ValueError(f"no corpus for principle {principle!r}; expected one of {', '.join(PRINCIPLES)}")
    builder = _Builder(principle, seed)
    _real_pairs(builder)
    benign = _benign_answers(builder)
    for question, answer, source in benign:
        builder.add(question, answer, HELPFUL, source, "benign-helpful", True)
    for name in EVAL_ONLY_ANSWER_SETS:
        for r in random.Random(seed).sample(_load(name), EVAL_ONLY_SAMPLE):
            example = Example(
                _text(r, "prompt"),
                _text(r, "response"),
                frozenset(builder.sets[HELPFUL]),
                name,
                True,
                "benign-helpful",
                True,
            )
            if _text(r, "prompt").strip() and _text(r, "response").strip():
                builder.held.append(example)
    _templated(builder, benign)
    for question, answer in generated.load_answers():
        builder.templated(question, answer, GENERATED_HELPFUL, f"{generated.SOURCE_SET}+smollm2")
    scheme = {"safety": SAFETY, "value": VALUE, "normal": NORMAL}[principle]
    return Corpus(principle, scheme.labels, tuple(builder.examples), tuple(builder.held))
