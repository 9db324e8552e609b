"""Watermark evaluation: attacks, metrics, oracle perplexity, the bit-accuracy plot, the HTML view."""

from __future__ import annotations

import html.parser
import math
import random
import re
import sys
import types
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from safework.core.errors import ConfigError, IntegrityError, ModelLoadError
from safework.watermark import attacks, metrics, oracle
from safework.watermark.attacks import (
    BUILTIN_ATTACKS,
    CopyPaste,
    Deletion,
    HumanTextPool,
    Insertion,
    Substitution,
    Truncation,
    count_for,
    parse_attack_spec,
    word_count,
)
from safework.watermark.plot import plot_bit_accuracy
from safework.watermark.view import render_html

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from safework.core.models import LoadedModel

PASSAGES = [
    "The council met on Tuesday to discuss the new bus routes, which residents had requested for years.",
    "Rain is expected across the north by the evening, with strong winds along the western coast.",
    "She studied chemistry at the university before joining a small laboratory in the city centre.",
    "Officials said the bridge would reopen next month after repairs to its steel supports were finished.",
]
TEXT = (
    'The model said: "Watermarks survive light edits, but heavy rewriting removes them."\n\n'
    "Researchers measured bit accuracy (per position) over 200 tokens; results varied by scheme, "
    "and the oracle's perplexity rose slightly.  Double  spaces stay."
)
STRENGTHS = [0.1, 0.25, 0.5, 0.75, 1.0]


@pytest.fixture
def pool() -> HumanTextPool:
    return HumanTextPool(passages=PASSAGES)


def is_subsequence(short: list[str], long: list[str]) -> bool:
    it = iter(long)
    return all(word in it for word in short)


# --- attacks ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("strength", STRENGTHS)
def test_substitution_replaces_that_fraction_and_keeps_layout(pool: HumanTextPool, strength: float) -> None:
    out = Substitution(pool)(TEXT, strength, random.Random(1))
    before, after = TEXT.split(), out.split()
    assert len(after) == len(before)
    assert re.findall(r"\s+", out) == re.findall(r"\s+", TEXT)  # whitespace structure, newlines included
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(changed) == count_for(strength, len(before))
    for old, new in changed:  # punctuation around the word is kept, the core is a pool word
        (lead, old_core, trail), (new_lead, new_core, new_trail) = map(attacks._split_core, (old, new))
        assert (lead, trail) == (new_lead, new_trail)
        assert new_core.lower() != old_core.lower() and new_core.lower() in pool.words()


def test_substitution_keeps_capitalisation(pool: HumanTextPool) -> None:
    out = Substitution(pool)("Alpha beta GAMMA", 1.0, random.Random(3)).split()
    assert out[0][0].isupper() and out[1].islower() and out[2].isupper()


@pytest.mark.parametrize("strength", STRENGTHS)
def test_deletion_removes_that_fraction(strength: float) -> None:
    out = Deletion()(TEXT, strength, random.Random(2))
    n = word_count(TEXT)
    assert word_count(out) == n - count_for(strength, n)
    assert is_subsequence(out.split(), TEXT.split())
    assert "\n\n" in out  # the paragraph break survives whichever words go


def test_deletion_merges_separators() -> None:
    text = "one two\nthree four"
    outs = {Deletion()(text, 0.25, random.Random(seed)) for seed in range(40)}
    assert outs == {"two\nthree four", "one\nthree four", "one two\nfour", "one two\nthree"}


@pytest.mark.parametrize("strength", STRENGTHS)
def test_insertion_adds_that_fraction(pool: HumanTextPool, strength: float) -> None:
    out = Insertion(pool)(TEXT, strength, random.Random(3))
    n = word_count(TEXT)
    assert word_count(out) == n + count_for(strength, n)
    assert is_subsequence(TEXT.split(), out.split())
    assert "\n\n" in out


@pytest.mark.parametrize("strength", [0.1, 0.3, 0.5, 0.9])
def test_copy_paste_embeds_the_text_in_human_prose(pool: HumanTextPool, strength: float) -> None:
    text = "alpha beta gamma delta epsilon zeta eta theta iota kappa " * 3
    out = CopyPaste(pool)(text, strength, random.Random(4))
    n = word_count(text)
    human = word_count(out) - n
    assert human == round(n * strength / (1 - strength))
    assert text.strip() in out
    assert abs(n / word_count(out) - (1 - strength)) <= 1 / word_count(out)
    left, right = out.split(text.strip())
    human_words = left.split() + right.split()
    corpus = " ".join(PASSAGES * 3)
    assert " ".join(human_words) in corpus + " " + corpus  # one contiguous stretch, split around the text


def test_copy_paste_split_point_varies(pool: HumanTextPool) -> None:
    text = "alpha beta gamma delta"
    cuts = {CopyPaste(pool)(text, 0.5, random.Random(s)).index("alpha") for s in range(30)}
    assert len(cuts) > 3


def test_copy_paste_rejects_strength_one(pool: HumanTextPool) -> None:
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        CopyPaste(pool)(TEXT, 1.0, random.Random(0))


@pytest.mark.parametrize("strength", STRENGTHS)
def test_truncation_drops_the_tail(strength: float) -> None:
    out = Truncation()(TEXT, strength, random.Random(5))
    n = word_count(TEXT)
    assert word_count(out) == n - count_for(strength, n)
    assert TEXT.startswith(out)
    assert out == "" or not out[-1].isspace()


def make_attacks(pool: HumanTextPool) -> dict[str, Any]:
    return {
        "substitution": Substitution(pool),
        "deletion": Deletion(),
        "insertion": Insertion(pool),
        "copy-paste": CopyPaste(pool),
        "truncation": Truncation(),
    }


@pytest.mark.parametrize("name", sorted(set(BUILTIN_ATTACKS) - {"truncation"}))  # truncation draws nothing
def test_attacks_are_deterministic_given_the_seed(pool: HumanTextPool, name: str) -> None:
    attack = make_attacks(pool)[name]
    first = attack(TEXT, 0.3, random.Random(7))
    assert attack(TEXT, 0.3, random.Random(7)) == first
    assert any(attack(TEXT, 0.3, random.Random(seed)) != first for seed in range(8, 12))


@pytest.mark.parametrize("name", sorted(BUILTIN_ATTACKS))
def test_strength_zero_is_identity(name: str) -> None:
    # The registered objects: strength 0 returns before the catalogue pool is ever loaded.
    assert BUILTIN_ATTACKS[name](TEXT, 0.0, random.Random(0)) == TEXT
    assert BUILTIN_ATTACKS[name]("", 0.5 if name != "copy-paste" else 0.0, random.Random(0)) == ""


@pytest.mark.parametrize("name", sorted(BUILTIN_ATTACKS))
@pytest.mark.parametrize("strength", [-0.1, 1.5, math.nan, math.inf, "0.1", True, None])
def test_invalid_strength_is_a_config_error(pool: HumanTextPool, name: str, strength: Any) -> None:
    with pytest.raises(ConfigError, match="strength"):
        make_attacks(pool)[name](TEXT, strength, random.Random(0))


def test_builtin_attack_names() -> None:
    assert set(BUILTIN_ATTACKS) == {"substitution", "deletion", "insertion", "copy-paste", "truncation"}


def test_count_for_rounds_half_up() -> None:
    assert [count_for(0.5, n) for n in (1, 2, 3, 5)] == [1, 1, 2, 3]
    assert count_for(1.0, 7) == 7 and count_for(0.0, 7) == 0


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("substitution:0.1", ("substitution", 0.1)), (" copy-paste : 0.5 ", ("copy-paste", 0.5)),
     ("truncation:1", ("truncation", 1.0)), ("my_plugin.attack:0", ("my_plugin.attack", 0.0))],
)  # fmt: skip
def test_parse_attack_spec(spec: str, expected: tuple[str, float]) -> None:
    assert parse_attack_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [("substitution", "no strength"), (":0.1", "attack name"), ("sub:abc", "not a number"),
     ("sub:1.5", r"\[0, 1\]"), ("sub:-0.1", r"\[0, 1\]"), ("sub:nan", r"\[0, 1\]"),
     ("a b:0.1", "attack name")],
)  # fmt: skip
def test_parse_attack_spec_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_attack_spec(spec)


def test_empty_pool_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="pool is empty"):
        Substitution(HumanTextPool(passages=["  ", ""]))(TEXT, 0.5, random.Random(0))


@pytest.mark.slow
def test_registered_attacks_draw_from_the_catalogue() -> None:
    out = BUILTIN_ATTACKS["substitution"](TEXT, 0.5, random.Random(0))
    assert word_count(out) == word_count(TEXT) and out != TEXT
    assert len(attacks.CATALOGUE_POOL.words()) > 100_000
    pasted = BUILTIN_ATTACKS["copy-paste"](TEXT, 0.5, random.Random(0))
    assert word_count(pasted) == 2 * word_count(TEXT)


# --- metrics ------------------------------------------------------------------------------------------------
def test_bit_accuracy() -> None:
    assert metrics.bit_accuracy(0b1010, 0b1010, 4) == 1.0
    assert metrics.bit_accuracy(0b1010, 0b0101, 4) == 0.0
    assert metrics.bit_accuracy(0b1010, 0b1000, 4) == 0.75
    assert metrics.bit_accuracy(0b1010, None, 4) == 0.5  # abstention scores chance
    assert metrics.mean_bit_accuracy([1, 1], [1, None], 1) == 0.75
    for bad in [(16, 0, 4), (0, -1, 4), (0, 0, 0)]:
        with pytest.raises(ConfigError):
            metrics.bit_accuracy(*bad)


def test_exact_match() -> None:
    assert metrics.exact_match(5, 5) and not metrics.exact_match(5, 4) and not metrics.exact_match(0, None)


def test_false_positive_rate() -> None:
    assert metrics.false_positive_rate([0.001, 0.01, 0.5, 0.9], 0.01) == 0.5  # p == alpha is flagged
    for bad_p, bad_alpha in [([], 0.01), ([1.2], 0.01), ([math.nan], 0.01), ([0.5], 0.0)]:
        with pytest.raises(ConfigError):
            metrics.false_positive_rate(bad_p, bad_alpha)


@pytest.mark.parametrize(("x", "sf"), [(1.2239, 0.10), (1.3581, 0.05), (1.6276, 0.01), (1.9495, 0.001)])
def test_kolmogorov_sf_known_values(x: float, sf: float) -> None:
    assert metrics.kolmogorov_sf(x) == pytest.approx(sf, rel=2e-3)


def test_kolmogorov_sf_is_continuous_and_monotone() -> None:
    assert metrics.kolmogorov_sf(1.18 - 1e-9) == pytest.approx(metrics.kolmogorov_sf(1.18 + 1e-9), abs=1e-8)
    grid = [metrics.kolmogorov_sf(0.05 * i) for i in range(80)]
    assert grid[0] == 1.0 and all(a >= b for a, b in pairwise(grid)) and grid[-1] < 1e-12


def exact_ks_cdf(n: int, d: float) -> float:
    """P(D_n < d), exactly (Marsaglia, Tsang & Wang 2003), as the reference for the asymptotic p-value."""
    k = int(n * d) + 1
    m = 2 * k - 1
    h = k - n * d
    mat = [[1.0 if i - j + 1 >= 0 else 0.0 for j in range(m)] for i in range(m)]
    for i in range(m):
        mat[i][0] -= h ** (i + 1)
        mat[m - 1][i] -= h ** (m - i)
    mat[m - 1][0] += (2 * h - 1) ** m if 2 * h - 1 > 0 else 0.0
    for i in range(m):
        for j in range(m):
            if i - j + 1 > 0:
                mat[i][j] /= math.factorial(i - j + 1)

    def mul(a: list[list[float]], b: list[list[float]]) -> list[list[float]]:
        return [[math.fsum(a[i][t] * b[t][j] for t in range(m)) for j in range(m)] for i in range(m)]

    result = [[float(i == j) for j in range(m)] for i in range(m)]
    power, e = mat, n
    while e:
        if e & 1:
            result = mul(result, power)
        power, e = mul(power, power), e >> 1
    s = result[k - 1][k - 1]
    for i in range(1, n + 1):
        s *= i / n
    return s


@pytest.mark.parametrize(("n", "d"), [(35, 0.15), (35, 0.2245), (35, 0.27), (60, 0.17), (100, 0.12)])
def test_ks_p_value_is_exact_enough_from_35_samples(n: int, d: float) -> None:
    # A sample whose statistic is exactly d: the KS p-value must match the exact distribution to 1e-2.
    values = [max(0.0, (i + 1) / n - d) for i in range(n)]  # D+ = d at every unclipped point, D- < d
    statistic, p_value = metrics.ks_uniform(values)
    assert statistic == pytest.approx(d)
    assert p_value == pytest.approx(1.0 - exact_ks_cdf(n, d), abs=1e-2)


def test_ks_p_value_is_conservative_in_the_far_tail() -> None:
    n, d = 35, 0.4
    _, p_value = metrics.ks_uniform([max(0.0, (i + 1) / n - d) for i in range(n)])
    exact = 1.0 - exact_ks_cdf(n, d)
    assert exact < 1e-4 and exact <= p_value < 1.5 * exact


def test_ks_uniform_accepts_uniform_and_rejects_skewed() -> None:
    rng = random.Random(0)
    uniform = [rng.random() for _ in range(300)]
    statistic, p_value = metrics.ks_uniform(uniform)
    assert statistic < 0.08 and p_value > 0.05
    skewed = [u**2 for u in uniform]  # p-values piling up near 0: an anti-conservative detector
    statistic, p_value = metrics.ks_uniform(skewed)
    assert statistic > 0.15 and p_value < 1e-6
    assert metrics.ks_uniform([0.5]) == (0.5, pytest.approx(metrics.kolmogorov_sf((1 + 0.12 + 0.11) * 0.5)))


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [(0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (5, 10, 0.2366, 0.7634), (1, 100, 0.0018, 0.0545),
     (81, 263, 0.2553, 0.3662)],
)  # fmt: skip
def test_wilson_interval_known_values(k: int, n: int, low: float, high: float) -> None:
    got = metrics.wilson_interval(k, n)
    assert got == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))


def test_wilson_interval_widens_with_confidence_and_validates() -> None:
    low95, high95 = metrics.wilson_interval(3, 20)
    low99, high99 = metrics.wilson_interval(3, 20, 0.99)
    assert low99 < low95 and high99 > high95
    for bad in [(3, 2), (-1, 5), (0, 0)]:
        with pytest.raises(ConfigError):
            metrics.wilson_interval(*bad)
    assert metrics.rate_summary(5, 10)["rate"] == 0.5


def test_summarize_drops_nan() -> None:
    got = metrics.summarize([3.0, 1.0, 2.0, math.nan])
    assert got == {"n": 3, "dropped": 1, "mean": 2.0, "std": 1.0, "median": 2.0, "min": 1.0, "max": 3.0}
    assert metrics.summarize([math.nan])["n"] == 0


# --- view ---------------------------------------------------------------------------------------------------
class _Spans(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[dict[str, str | None]] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        found = dict(attrs)
        if tag == "span" and (found.get("class") or "").split()[0] == "tok":
            self.tokens.append(found)


def test_view_escapes_and_has_one_span_per_token() -> None:
    tokens = ["<script>alert(1)</script>", " a & b", "\n", '"quoted"', " end"]
    status = ["hit", "miss", "skipped", "hit", "miss"]
    page = render_html(tokens, status, "<script>t</script>", {"<b>bits</b>": "<i>", "accuracy": 0.87654321})
    assert "<script" not in page.lower() and "&lt;script&gt;" in page
    assert "&amp;" in page and "0.8765" in page and "&lt;b&gt;bits&lt;/b&gt;" in page
    parser = _Spans()
    parser.feed(page)
    assert [s["class"] for s in parser.tokens] == [f"tok {s}" for s in status]
    assert [s["title"] for s in parser.tokens] == [f"token {i}: {s}" for i, s in enumerate(status)]
    assert "pre-wrap" in page and "\u21b5</b>\n" in page  # newlines kept and marked
    assert parser.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "p", "span", "div", "b",
                           "table", "tr", "th", "td"}  # fmt: skip
    assert "http" not in page and "src=" not in page  # self-contained
    assert "hit: 2" in page and "miss: 2" in page and "skipped: 1" in page  # legend with counts


def test_view_validates_statuses() -> None:
    with pytest.raises(ConfigError, match="one status per token"):
        render_html(["a", "b"], ["hit"], "t", {})
    with pytest.raises(ConfigError, match="unknown token status"):
        render_html(["a"], ["green"], "t", {})


# --- plot ---------------------------------------------------------------------------------------------------
def test_plot_writes_a_png(tmp_path: Path) -> None:
    curves = {"credid": [(50, 0.7), (100, 0.85), (200, 0.97)], "mpac": [(200, 0.9), (50, 0.6)]}
    out = plot_bit_accuracy(curves, tmp_path / "sub" / "acc.png", "bit accuracy <b>")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000


@pytest.mark.parametrize("curves", [{}, {"a": []}, {"a": [(10, 1.5)]}])
def test_plot_rejects_bad_curves(tmp_path: Path, curves: dict[str, list[tuple[int, float]]]) -> None:
    with pytest.raises(ConfigError):
        plot_bit_accuracy(curves, tmp_path / "x.png", "t")


# --- oracle perplexity --------------------------------------------------------------------------------------
def word_tokenizer(n_words: int = 97) -> PreTrainedTokenizerBase:
    """An in-memory word-level tokenizer that puts BOS before every text, like Llama's and Gemma's."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(n_words)]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="</s>"
    )


@pytest.fixture(scope="module")
def tiny_lm() -> LoadedModel:
    from safework.core.models import tiny_loaded

    return tiny_loaded(word_tokenizer(), seed=3)


def words(*indices: int) -> str:
    return " ".join(f"w{i}" for i in indices)


def reference_nll(loaded: LoadedModel, prompt: str, continuation: str) -> tuple[float, int]:
    """Unbatched, unpadded: the full log-softmax, summed over the continuation's positions only."""
    import torch

    context = loaded.tokenizer(prompt)["input_ids"]
    target = loaded.tokenizer(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([context + target])
    with torch.no_grad():
        logp = torch.log_softmax(loaded.model(ids).logits[0].float(), dim=-1)
    return -sum(float(logp[len(context) + j - 1, t]) for j, t in enumerate(target)), len(target)


PROMPTS = [words(1, 2, 3), words(4), words(5, 6, 7, 8, 9, 10, 11), ""]
CONTINUATIONS = [words(20, 21, 22), words(30, 31, 32, 33, 34, 35), words(40), words(50, 51)]


def test_perplexity_is_finite_and_matches_the_unbatched_reference(tiny_lm: LoadedModel) -> None:
    scores = oracle.score_continuations(tiny_lm, PROMPTS, CONTINUATIONS, batch_size=3)
    for score, prompt, continuation in zip(scores, PROMPTS, CONTINUATIONS, strict=True):
        nll, n = reference_nll(tiny_lm, prompt, continuation)
        assert score.n_tokens == n
        assert score.nll == pytest.approx(nll, rel=1e-4)
        assert math.isfinite(score.perplexity) and score.perplexity > 1.0
    ppl = oracle.perplexities(tiny_lm, PROMPTS, CONTINUATIONS, batch_size=1)
    assert ppl == pytest.approx([s.perplexity for s in scores], rel=1e-4)


def test_prompt_conditions_but_is_not_scored(tiny_lm: LoadedModel) -> None:
    base = oracle.score_continuations(tiny_lm, [words(1, 2, 3)], [words(20, 21, 22)])[0]
    changed_last = oracle.score_continuations(tiny_lm, [words(1, 2, 9)], [words(20, 21, 22)])[0]
    longer = oracle.score_continuations(tiny_lm, [words(1, 2, 3, 4, 5, 6, 7, 8)], [words(20, 21, 22)])[0]
    assert changed_last.nll != pytest.approx(base.nll, rel=1e-6)  # the prompt is context ...
    assert base.n_tokens == changed_last.n_tokens == longer.n_tokens == 3  # ... never a scored token


def test_empty_continuation_is_nan_and_empty_prompt_uses_bos(tiny_lm: LoadedModel) -> None:
    got = oracle.perplexities(tiny_lm, [words(1), ""], ["", words(7, 8)])
    assert math.isnan(got[0]) and math.isfinite(got[1])


def test_long_prompt_is_cut_from_the_left(tiny_lm: LoadedModel) -> None:
    limit = tiny_lm.model.config.max_position_embeddings
    long_prompt = words(*[i % 90 for i in range(limit + 50)])
    assert math.isfinite(oracle.perplexities(tiny_lm, [long_prompt], [words(3, 4)])[0])
    with pytest.raises(ConfigError, match="shorter prefix"):
        oracle.perplexities(tiny_lm, ["w1"], [words(*[i % 90 for i in range(limit)])])


def test_cut_context_keeps_bos_and_the_prompt_end() -> None:
    assert oracle._cut_context([1, 10, 11, 12, 13], 1, 3) == [1, 12, 13]
    assert oracle._cut_context([1, 10, 11, 12, 13], 1, 1) == [13]
    assert oracle._cut_context([10, 11, 12, 13], 0, 2) == [12, 13]


def test_perplexity_argument_errors(tiny_lm: LoadedModel) -> None:
    with pytest.raises(ConfigError, match="one prompt per continuation"):
        oracle.perplexities(tiny_lm, ["a"], ["b", "c"])
    with pytest.raises(ConfigError, match="batch_size"):
        oracle.perplexities(tiny_lm, ["a"], ["b"], batch_size=0)


def test_batches_respect_size_and_logit_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = [([1] * (i + 1), [2] * (10 - i)) for i in range(7)]
    groups = oracle._batches(pairs, 3, 100)
    assert sorted(i for g in groups for i in g) == list(range(7)) and all(len(g) <= 3 for g in groups)
    budget = 2 * 11 * 100
    monkeypatch.setattr(oracle, "LOGIT_BUDGET", budget)
    groups = oracle._batches(pairs, 8, 100)
    assert groups == [[0, 1], [2, 3], [4, 5, 6]]  # longest first; shorter targets fit more rows
    assert all(len(g) * (max(len(pairs[i][1]) for i in g) + 1) * 100 <= budget for g in groups)


# --- the oracle's GGUF assembly (with a fake carrier: no 240 MB file needed) --------------------------------
@pytest.fixture
def fake_carrier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[types.SimpleNamespace]:
    import hashlib

    payload = b"GGUF" + b"\0" * 60
    calls: list[Path] = []

    def assemble(path: Path, overwrite: bool = False) -> Path:
        calls.append(Path(path))
        Path(path).write_bytes(module.payload)
        if hashlib.sha256(module.payload).hexdigest() != module.EXPECTED_SHA256:
            raise ValueError("Assembled file sha256 did not match expected value")
        return Path(path)

    module = types.SimpleNamespace(
        MODEL_NAME="fake.gguf",
        EXPECTED_SHA256=hashlib.sha256(payload).hexdigest(),
        assemble=assemble,
        payload=payload,
        calls=calls,
    )
    monkeypatch.setenv("SAFEWORK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, oracle.GEMMA_CARRIER, module)
    yield module


def test_gguf_is_assembled_once(fake_carrier: types.SimpleNamespace) -> None:
    path = oracle.gemma_gguf_path()
    assert path.read_bytes() == fake_carrier.payload and len(fake_carrier.calls) == 1
    assert oracle.gemma_gguf_path() == path and len(fake_carrier.calls) == 1  # verified marker: no rewrite
    assert not list(path.parent.glob("*.partial"))


def test_gguf_with_a_bad_hash_is_an_integrity_error(fake_carrier: types.SimpleNamespace) -> None:
    fake_carrier.payload = b"GGUF corrupted"
    with pytest.raises(IntegrityError, match="force-reinstall"):
        oracle.gemma_gguf_path()
    assert not list((Path(oracle.cache_dir("oracle"))).glob("*.partial"))


def test_missing_oracle_packages_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, oracle.GEMMA_CARRIER, None)  # import now raises ImportError
    with pytest.raises(ModelLoadError, match=r"requirements/oracle\.txt"):
        oracle.load_oracle()


def test_other_specs_go_to_load_causal_lm(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        oracle.load_oracle(str(tmp_path / "missing-model"))


# --- real oracles (slow) ------------------------------------------------------------------------------------
FORECAST = "The weather forecast for the weekend"
NATURAL = (FORECAST, " says it will be sunny on Saturday and rainy on Sunday.")
SCRAMBLED = (FORECAST, " Sunday sunny rainy says on be and it Saturday will on.")


def check_real_oracle(loaded: LoadedModel) -> None:
    prompts, continuations = [NATURAL[0], SCRAMBLED[0]], [NATURAL[1], SCRAMBLED[1]]
    natural, scrambled = oracle.perplexities(loaded, prompts, continuations)
    assert 1.0 < natural < scrambled
    single = oracle.perplexities(loaded, [NATURAL[0]], [NATURAL[1]])[0]
    assert single == pytest.approx(natural, rel=1e-3)  # left padding does not change the score


@pytest.mark.slow
def test_embedded_model_as_oracle() -> None:
    check_real_oracle(oracle.load_oracle("default"))


@pytest.mark.slow
def test_gemma_oracle() -> None:
    pytest.importorskip(oracle.GEMMA_CARRIER, reason=f"oracle packages not installed: {oracle.INSTALL_HINT}")
    loaded = oracle.load_oracle()
    assert type(loaded.model).__name__ == "Gemma3ForCausalLM"
    check_real_oracle(loaded)
