"""The evaluation harness behind ``safework watermark evaluate``: one run, every figure a user asks for.

Prompts are the first words of the catalogue's natural passages (XSum, BoolQ, QuAC); the human controls are
the same passages' own continuations, never seen by the generator. One run measures

* payload success (exact) and bit accuracy on the watermarked texts, and bit accuracy against the number
  of tokens (the texts cut to shorter lengths);
* the same under each requested attack;
* the false-positive rate on human text at ``alpha`` and the p-value calibration (KS test on the
  known-payload p-values, which are exactly uniform on unwatermarked text);
* perplexity of watermarked and unwatermarked continuations of the same prompts under an oracle LM that
  is not the generator.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from safework.core.console import progress
from safework.core.plugins import collect
from safework.core.types import WatermarkPayload
from safework.watermark.engine import Watermarker
from safework.watermark.errors import WatermarkInputError
from safework.watermark.generation import Generation, generate
from safework.watermark.keys import KEY_BYTES, WatermarkKey
from safework.watermark.metrics import bit_accuracy, false_positive_rate, ks_uniform, rate_summary, summarize

PASSAGE_SETS = ("xsum", "boolq-passages", "quac")
PROMPT_WORDS = 40
MIN_PASSAGE_WORDS = 120
LENGTHS = (25, 50, 75, 100, 150, 200)


@dataclass
class EvalConfig:
    """What to run; defaults are the acceptance setting of the watermark issue."""

    n: int = 100
    human: int = 500
    max_new_tokens: int = 200
    batch_size: int = 8
    seed: int = 0
    attacks: list[tuple[str, float]] = field(default_factory=list)
    perplexity: bool = True
    oracle: str = "gemma-3-270m"


def passages(n: int, *, offset: int = 0) -> list[str]:
    """``n`` distinct natural passages of >= MIN_PASSAGE_WORDS words, interleaved across the sets."""
    from safework.core.data import get_dataset

    pools = []
    for name in PASSAGE_SETS:
        texts = [str(r["text"]) for r in get_dataset(name).records()]
        pools.append([t for t in dict.fromkeys(texts) if len(t.split()) >= MIN_PASSAGE_WORDS])
    mixed = [p for group in zip(*pools, strict=False) for p in group]
    if len(mixed) < offset + n:
        raise WatermarkInputError(
            f"the catalogue has {len(mixed)} passages of >= {MIN_PASSAGE_WORDS} words; asked for {offset + n}"
        )
    return mixed[offset : offset + n]


def split_passage(text: str) -> tuple[str, str]:
    """(prompt = the first PROMPT_WORDS words, human continuation = the rest)."""
    words = text.split()
    return " ".join(words[:PROMPT_WORDS]), " " + " ".join(words[PROMPT_WORDS:])


def decode_stats(
    watermarker: Watermarker, ids_list: Sequence[Sequence[int]], expected: Sequence[WatermarkPayload]
) -> dict[str, Any]:
    bits = watermarker.bits
    exact = detected = 0
    accuracies, p_values = [], []
    for ids, payload in zip(ids_list, expected, strict=True):
        if len(ids) <= watermarker.scheme.warmup:
            accuracies.append(0.5)
            p_values.append(1.0)
            continue
        result = watermarker.extract_ids(list(ids))
        detected += result.detected
        p_values.append(result.p_value)
        if bits:
            exact += result.payload == payload
            accuracies.append(bit_accuracy(payload.value, result.decoded.value, bits))
        else:
            exact += result.detected
    n = len(expected)
    return {
        "success": rate_summary(exact, n),
        "detected": rate_summary(detected, n),
        "bit_accuracy": sum(accuracies) / n if bits else None,
        "p_value": summarize(p_values),
        "p_values": p_values,
    }


def attacked_ids(
    watermarker: Watermarker, texts: Sequence[str], attack: Callable[..., str], strength: float, seed: int
) -> list[list[int]]:
    rng = random.Random(seed)
    tokenizer = watermarker.loaded.tokenizer
    return [tokenizer(attack(t, strength, rng), add_special_tokens=False)["input_ids"] for t in texts]


def run_evaluation(watermarker: Watermarker, config: EvalConfig, out: Path) -> dict[str, Any]:
    """Run everything, write ``results.json``, ``summary.md``, ``bit_accuracy.png`` and an example HTML."""
    if config.n < 1:
        raise WatermarkInputError(f"--n must be >= 1, got {config.n}")
    attacks = collect("register_attacks")
    for name, _ in config.attacks:
        if name not in attacks:
            raise WatermarkInputError(f"unknown attack {name!r}; registered: {', '.join(sorted(attacks))}")
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(config.seed)
    bits = watermarker.bits
    source = passages(config.n)
    prompts = [split_passage(p)[0] for p in source]
    payloads = [WatermarkPayload(rng.getrandbits(bits) if bits else 0, bits) for _ in prompts]
    common: dict[str, Any] = {
        "max_new_tokens": config.max_new_tokens,
        "min_new_tokens": config.max_new_tokens,
        "batch_size": config.batch_size,
        "seed": config.seed,
    }
    marked = generate(watermarker, prompts, payloads, **common)
    results: dict[str, Any] = {"settings": watermarker.settings(), "config": {**config.__dict__}}
    results["clean"] = decode_stats(watermarker, [g.ids for g in marked], payloads)
    curve = []
    for length in LENGTHS:
        if length <= config.max_new_tokens:
            stats = decode_stats(watermarker, [g.ids[:length] for g in marked], payloads)
            curve.append((length, stats["bit_accuracy"] if bits else stats["success"]["rate"]))
    results["by_length"] = curve
    results["attacks"] = {}
    for name, strength in config.attacks:
        ids = attacked_ids(watermarker, [g.text for g in marked], attacks[name], strength, config.seed)
        results["attacks"][f"{name}:{strength:g}"] = decode_stats(watermarker, ids, payloads)
    if config.human:
        results["human"] = human_controls(
            watermarker, config.human, payloads[0], offset=config.n, seed=config.seed
        )
    if config.perplexity:
        plain = generate(watermarker, prompts, [None] * len(prompts), watermark=False, **common)
        results["perplexity"] = oracle_perplexity(config.oracle, prompts, marked, plain)
    _write_outputs(watermarker, results, marked, out)
    return results


def human_controls(
    watermarker: Watermarker, n: int, payload: WatermarkPayload, *, offset: int = 0, seed: int = 0
) -> dict[str, Any]:
    """False positives and p-value calibration on ``n`` human continuations (distinct from the prompts).

    * detection: the full decoder under the vendor's key, the false-positive rate at ``alpha``;
    * calibration: the known-payload p-value of each text under a fresh random key and payload. For a
      fixed text it is exactly uniform over keys, and fresh keys make the texts' p-values independent, so
      a KS test checks exactly the claim;
    * one key, one payload for every text (what one TTP seed sees): each p-value is still valid, but texts
      share common contexts ("the", ",") and so share permutations; their p-values are dependent and a
      KS test across texts may reject without any p-value being miscalibrated.
    """
    texts = [split_passage(p)[1] for p in passages(n, offset=offset)]
    tokenizer = watermarker.loaded.tokenizer
    rng = random.Random(seed)
    bits = watermarker.bits
    detection, fresh, fixed = [], [], []
    with progress() as bar:
        task = bar.add_task("human controls", total=len(texts))
        for text in texts:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"][:200]
            if len(ids) > watermarker.scheme.warmup:
                evidence = watermarker.evidence(ids)  # one pass serves both tests under the vendor key
                detection.append(watermarker.decode(evidence).p_value)
                fixed.append(watermarker.known_payload_p_value(ids, payload, evidence=evidence))
                other = watermarker.with_key(WatermarkKey(rng.randbytes(KEY_BYTES)))
                fresh.append(other.known_payload_p_value(ids, WatermarkPayload(rng.getrandbits(bits), bits)))
            bar.advance(task)
    alpha = watermarker.alpha
    return {
        "n": len(detection),
        "alpha": alpha,
        "false_positives": rate_summary(sum(p <= alpha for p in detection), len(detection)),
        "fpr": false_positive_rate(detection, alpha),
        "detection_p_value": summarize(detection),
        "known_payload_ks": _uniformity(fresh),
        "fixed_key_ks": _uniformity(fixed),
    }


def _uniformity(p_values: list[float]) -> dict[str, Any]:
    statistic, p_value = ks_uniform(p_values)
    deciles = [float(torch.tensor(p_values).quantile(q / 10)) for q in range(1, 10)] if p_values else []
    return {"statistic": statistic, "p_value": p_value, "n": len(p_values), "deciles": deciles}


def oracle_perplexity(
    spec: str, prompts: list[str], marked: list[Generation], plain: list[Generation]
) -> dict[str, Any]:
    """Perplexity of watermarked vs unwatermarked continuations of the same prompts under the oracle."""
    from safework.watermark.oracle import load_oracle, perplexities

    oracle = load_oracle(spec)
    wm = summarize(perplexities(oracle, prompts, [g.text for g in marked]))
    base = summarize(perplexities(oracle, prompts, [g.text for g in plain]))
    return {
        "oracle": spec,
        "watermarked": wm,
        "unwatermarked": base,
        "ratio_median": wm["median"] / base["median"],
        "ratio_mean": wm["mean"] / base["mean"],
    }


def _write_outputs(
    watermarker: Watermarker, results: dict[str, Any], marked: list[Generation], out: Path
) -> None:
    from safework.watermark.highlight import write_view
    from safework.watermark.plot import plot_bit_accuracy

    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    with (out / "texts.jsonl").open("w", encoding="utf-8") as handle:
        for g in marked:
            handle.write(json.dumps(g.to_json(), ensure_ascii=False) + "\n")
    name = watermarker.scheme.name
    plot_bit_accuracy(
        {name: results["by_length"]},
        out / "bit_accuracy.png",
        f"{name}, {watermarker.bits} bits: bit accuracy vs tokens",
    )
    first = torch.tensor(marked[0].ids, dtype=torch.int64)
    if first.numel() > watermarker.scheme.warmup:
        write_view(watermarker, first, watermarker.extract_ids(first), out / "example.html")
    (out / "summary.md").write_text(summary_table(results), encoding="utf-8")


def summary_table(results: dict[str, Any]) -> str:
    """A markdown summary of one evaluation."""
    s = results["settings"]
    lines = [
        f"# {s['scheme']}, {s['bits']} bits",
        "",
        "| condition | success | bit accuracy | detected |",
        "|---|---|---|---|",
    ]
    rows = [("clean", results["clean"]), *results["attacks"].items()]
    for name, stats in rows:
        acc = "-" if stats["bit_accuracy"] is None else f"{stats['bit_accuracy']:.4f}"
        lines.append(f"| {name} | {stats['success']['rate']:.3f} | {acc} | {stats['detected']['rate']:.3f} |")
    h = results.get("human")
    lines += (
        []
        if h is None
        else [
            "",
            f"Human texts: n={h['n']}, false positives at alpha={h['alpha']:g}: "
            f"{h['false_positives']['k']} (FPR {h['fpr']:.4f}); known-payload p-values (fresh key per "
            f"text) KS statistic {h['known_payload_ks']['statistic']:.4f}, KS p-value "
            f"{h['known_payload_ks']['p_value']:.3f}; one key and payload for all texts: KS statistic "
            f"{h['fixed_key_ks']['statistic']:.4f}, KS p-value {h['fixed_key_ks']['p_value']:.3f}.",
        ]
    )
    if "perplexity" in results:
        p = results["perplexity"]
        lines += [
            "",
            f"Oracle ({p['oracle']}) perplexity: watermarked median {p['watermarked']['median']:.2f}, "
            f"unwatermarked median {p['unwatermarked']['median']:.2f}, ratio {p['ratio_median']:.3f} "
            f"(means: {p['ratio_mean']:.3f}).",
        ]
    lines += [
        "",
        "Bit accuracy by number of tokens: " + ", ".join(f"{n}: {a:.3f}" for n, a in results["by_length"]),
    ]
    return "\n".join(lines) + "\n"
