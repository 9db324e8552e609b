"""Text attacks for watermark robustness evaluation, with the ``register_attacks`` hook signature.

Every attack is ``attack(text, strength, rng) -> str``: ``strength`` in [0, 1] says how much of the text is
changed (0 always returns the text unchanged) and all randomness comes from ``rng``, so a run is
reproducible from its seed. Attacks work on whitespace-separated words and keep the whitespace between
them (newlines survive), so a detector sees the same layout minus the attacked words.

Attacks that need human text (substitution, insertion, copy-paste) draw it from a :class:`HumanTextPool`.
The registered objects share :data:`CATALOGUE_POOL`, loaded lazily from the data catalogue's human passages
on first use; tests inject a small in-memory pool instead.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from safework.core.errors import ConfigError

Attack = Callable[[str, float, random.Random], str]

# Catalogue sets of natural human prose (news and Wikipedia), read in this order; see DESIGN.md §4.
DEFAULT_POOL_DATASETS: tuple[str, ...] = ("xsum", "quac")
_WORD = re.compile(r"\S+")
_SPACE = re.compile(r"\s+")
# A word's alphanumeric core, between leading and trailing punctuation: '"Hello,' -> '"', 'Hello', ','.
_CORE = re.compile(r"^([^\w]*)(.*?)([^\w]*)$", re.DOTALL)
_POOL_WORD = re.compile(r"^[A-Za-z][A-Za-z'-]*$")
_SPEC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_MAX_DRAWS = 32


# -- strength and specs --------------------------------------------------------------------------------
def check_strength(strength: float, *, name: str = "attack", below_one: bool = False) -> float:
    """Validate an attack strength (a real number in [0, 1], or [0, 1) where 1 has no meaning)."""
    if isinstance(strength, bool) or not isinstance(strength, int | float):
        raise ConfigError(f"{name} strength must be a number in [0, 1], got {strength!r}; e.g. 0.1 for 10%")
    value = float(strength)
    upper_ok = value < 1.0 if below_one else value <= 1.0
    if not (math.isfinite(value) and value >= 0.0 and upper_ok):
        bound = "[0, 1)" if below_one else "[0, 1]"
        why = " (1 would leave no watermarked text at all)" if below_one else ""
        raise ConfigError(
            f"{name} strength must lie in {bound}{why}, got {strength!r}; "
            "use a fraction such as 0.1 for 10% of the words"
        )
    return value


def parse_attack_spec(spec: str) -> tuple[str, float]:
    """Split ``"name:strength"`` (e.g. ``"substitution:0.1"``) into its name and validated strength.

    Only the syntax and the range are checked here; whether the name is registered is the caller's check
    against the ``register_attacks`` registry.
    """
    text = spec.strip()
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    example = "e.g. substitution:0.1 or truncation:0.5"
    if not sep:
        raise ConfigError(f"attack spec {spec!r} has no strength; write NAME:STRENGTH, {example}")
    if not _SPEC_NAME.match(name):
        raise ConfigError(
            f"attack spec {spec!r} has no valid attack name before ':' (letters, digits, '-', '_', '.'); "
            f"write NAME:STRENGTH, {example}"
        )
    try:
        strength = float(value)
    except ValueError:
        raise ConfigError(
            f"attack spec {spec!r}: strength {value!r} is not a number; write NAME:STRENGTH with a "
            f"fraction in [0, 1], {example}"
        ) from None
    return name, check_strength(strength, name=f"attack {name!r}")


def count_for(strength: float, n: int) -> int:
    """How many of ``n`` items a strength touches: round half up, so 0.5 of 3 words is 2, not banker's 2/1."""
    return min(n, math.floor(strength * n + 0.5))


# -- words and the whitespace between them ------------------------------------------------------------
@dataclass
class _Words:
    """A text as ``seps[0] words[0] seps[1] words[1] ... words[-1] seps[-1]`` (len(seps) = len(words) + 1)."""

    words: list[str]
    seps: list[str]

    @classmethod
    def split(cls, text: str) -> _Words:
        words = _WORD.findall(text)
        seps = _WORD.split(text)
        return cls(words, seps)

    def join(self) -> str:
        parts = [self.seps[0]]
        for word, sep in zip(self.words, self.seps[1:], strict=True):
            parts += [word, sep]
        return "".join(parts)


def _merge_seps(before: str, after: str, *, last: bool) -> str:
    """The separator left where a word was removed: the one with more line breaks (layout), else the outer
    one at the text's ends (no stray leading or trailing space), else ``before``."""
    if after.count("\n") != before.count("\n"):
        return after if after.count("\n") > before.count("\n") else before
    return after if last else before


def _split_core(word: str) -> tuple[str, str, str]:
    """Leading punctuation, alphanumeric core, trailing punctuation (the pattern matches any string)."""
    match = _CORE.match(word)
    assert match is not None
    lead, core, trail = match.groups()
    return lead, core, trail


def _match_case(template: str, word: str) -> str:
    """Give a replacement the capitalisation of the word it replaces (sentence starts stay capitalised)."""
    if len(template) > 1 and template.isupper():
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word.lower()


# -- human text ----------------------------------------------------------------------------------------
@dataclass
class HumanTextPool:
    """Human passages and the words drawn from them, loaded once on first use.

    Pass ``passages`` to use your own text (tests, other languages); otherwise the passages of
    ``datasets`` are read from the data catalogue the first time an attack needs them. Words are kept
    with their corpus frequency, so substitutions and insertions follow the unigram distribution of
    English prose rather than a flat draw over rare vocabulary.
    """

    passages: Sequence[str] | None = None
    datasets: tuple[str, ...] = DEFAULT_POOL_DATASETS
    _passages: list[str] | None = field(default=None, init=False, repr=False)
    _words: list[str] | None = field(default=None, init=False, repr=False)

    def texts(self) -> list[str]:
        """The passages with at least one word, in a fixed order (so seeded draws are reproducible)."""
        if self._passages is None:
            source: Iterable[str] = self.passages if self.passages is not None else self._from_catalogue()
            found = [_SPACE.sub(" ", p).strip() for p in source]
            found = [p for p in found if p]
            if not found:
                raise ConfigError(
                    "the human text pool is empty; pass passages=[...] with real text, or check that the "
                    f"catalogue data sets {list(self.datasets)} have records (safework data fetch --all)"
                )
            self._passages = found
        return self._passages

    def words(self) -> list[str]:
        """Every alphabetic word occurrence of the passages, lower-cased (repeats kept: frequency weights)."""
        if self._words is None:
            cores = (_split_core(w)[1] for p in self.texts() for w in p.split())
            self._words = [c.lower() for c in cores if _POOL_WORD.match(c)]
            if not self._words:
                raise ConfigError("the human text pool holds no alphabetic words; pass passages of prose")
        return self._words

    def word(self, rng: random.Random, *, avoid: str = "") -> str:
        """A random pool word, different from ``avoid`` (case-insensitive) whenever the pool allows."""
        words = self.words()
        avoid = avoid.lower()
        choice = words[rng.randrange(len(words))]
        for _ in range(_MAX_DRAWS):
            if choice != avoid:
                break
            choice = words[rng.randrange(len(words))]
        return choice

    def span(self, n: int, rng: random.Random) -> list[str]:
        """``n`` consecutive human words from a random place (passages chained, wrapping around)."""
        texts = self.texts()
        start = rng.randrange(len(texts))
        out: list[str] = []
        index = start
        offset: int | None = None
        while len(out) < n:
            words = texts[index % len(texts)].split()
            if offset is None:  # first passage: start at a random word of it
                offset = rng.randrange(len(words))
                words = words[offset:]
            out += words[: n - len(out)]
            index += 1
        return out

    def _from_catalogue(self) -> Iterable[str]:
        from safework.core.data import get_dataset

        for name in self.datasets:
            for record in get_dataset(name).records():
                yield str(record["text"])


CATALOGUE_POOL = HumanTextPool()


# -- the attacks -----------------------------------------------------------------------------------------
@dataclass
class Substitution:
    """Replace ``strength`` of the words with other human words, keeping their punctuation and case.

    A stand-in for the paper's RoBERTa substitution without a masked LM: cheaper, and strictly harsher on
    fluency, which is the conservative side for a robustness claim.
    """

    pool: HumanTextPool = field(default_factory=lambda: CATALOGUE_POOL)

    def __call__(self, text: str, strength: float, rng: random.Random) -> str:
        strength = check_strength(strength, name="substitution")
        parts = _Words.split(text)
        k = count_for(strength, len(parts.words))
        if k == 0:
            return text
        for i in sorted(rng.sample(range(len(parts.words)), k)):
            lead, core, trail = _split_core(parts.words[i])
            if core:
                new = _match_case(core, self.pool.word(rng, avoid=core))
                parts.words[i] = lead + new + trail
            else:  # a word of punctuation only: replace it whole
                parts.words[i] = self.pool.word(rng)
        return parts.join()


@dataclass
class Deletion:
    """Delete ``strength`` of the words; the gap keeps the separator with more line breaks."""

    def __call__(self, text: str, strength: float, rng: random.Random) -> str:
        strength = check_strength(strength, name="deletion")
        parts = _Words.split(text)
        k = count_for(strength, len(parts.words))
        if k == 0:
            return text
        # Delete from the end backwards so earlier indices stay valid.
        for i in sorted(rng.sample(range(len(parts.words)), k), reverse=True):
            last = i == len(parts.words) - 1
            del parts.words[i]
            parts.seps[i : i + 2] = [_merge_seps(parts.seps[i], parts.seps[i + 1], last=last)]
        return parts.join()


@dataclass
class Insertion:
    """Insert ``round(strength * n)`` human words at random gaps of an ``n``-word text (one space each)."""

    pool: HumanTextPool = field(default_factory=lambda: CATALOGUE_POOL)

    def __call__(self, text: str, strength: float, rng: random.Random) -> str:
        strength = check_strength(strength, name="insertion")
        parts = _Words.split(text)
        n = len(parts.words)
        k = count_for(strength, n)
        if k == 0:
            return text
        before: dict[int, list[str]] = {}  # gap g = before word g; g == n means after the last word
        for _ in range(k):
            before.setdefault(rng.randint(0, n), []).append(self.pool.word(rng))
        # Inserted words lead into word i, so the separators of the original text stay where they were.
        words = [" ".join([*before.get(i, []), word]) for i, word in enumerate(parts.words)]
        if n in before:
            words[-1] = " ".join([words[-1], *before[n]])
        return _Words(words, parts.seps).join()


@dataclass
class CopyPaste:
    """Embed the text in human prose so that it is ``1 - strength`` of the result's words.

    The human words are one contiguous stretch of a passage, split at a random point: the part before the
    split precedes the watermarked text and the rest follows it, as when a generated paragraph is pasted
    into a human document. ``strength`` must be below 1 (at 1 the watermarked text would be 0% of an
    infinitely long document).
    """

    pool: HumanTextPool = field(default_factory=lambda: CATALOGUE_POOL)

    def __call__(self, text: str, strength: float, rng: random.Random) -> str:
        strength = check_strength(strength, name="copy-paste", below_one=True)
        n = len(_WORD.findall(text))
        human = math.floor(n * strength / (1.0 - strength) + 0.5)
        if human == 0:
            return text
        words = self.pool.span(human, rng)
        cut = rng.randint(0, human)
        left, right = " ".join(words[:cut]), " ".join(words[cut:])
        return " ".join(p for p in (left, text.strip(), right) if p)


@dataclass
class Truncation:
    """Drop the last ``strength`` of the words (the reader stopped early, or a length limit cut it)."""

    def __call__(self, text: str, strength: float, rng: random.Random) -> str:
        strength = check_strength(strength, name="truncation")
        matches = list(_WORD.finditer(text))
        k = count_for(strength, len(matches))
        if k == 0:
            return text
        keep = len(matches) - k
        return text[: matches[keep - 1].end()] if keep else ""


BUILTIN_ATTACKS: dict[str, Attack] = {
    "substitution": Substitution(),
    "deletion": Deletion(),
    "insertion": Insertion(),
    "copy-paste": CopyPaste(),
    "truncation": Truncation(),
}


def word_count(text: str) -> int:
    """Whitespace-separated words, the unit every attack's strength refers to."""
    return len(_WORD.findall(text))
