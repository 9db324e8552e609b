"""Held-out quality of the neural safety / value verifiers next to the keyword baseline.

    .venv/bin/python benchmarks/verifier_quality.py [--seed 0] [--out benchmarks/results/verifier_quality.md]

Trains the heads first if they are not cached. Figures are recomputed through the verifiers' serving path
(``verifier(items)``), so they cover exactly what RL will call. Prints a table per principle and writes a
markdown section for benchmarks/RESULTS.md. Never prints record text (the corpus is hazardous by design).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

import torch

from safework.core.console import print_table
from safework.verifiers.base import VerifierItem
from safework.verifiers.neural import SafetyVerifier, ValueVerifier
from safework.verifiers.neural.corpus import Corpus, Example, build_corpus
from safework.verifiers.neural.keyword import classify
from safework.verifiers.neural.metrics import quality


def _run(verifier: Any, examples: list[Example]) -> tuple[list[str], float]:
    started = time.perf_counter()
    scores = verifier([VerifierItem(e.prompt, e.response) for e in examples])
    return [s.label for s in scores], time.perf_counter() - started


def _fmt(x: float) -> str:
    return f"{100 * x:.1f}" if x == x else "-"  # NaN-safe


def evaluate(name: str, verifier: Any, corpus: Corpus) -> tuple[list[list[str]], list[list[str]], str]:
    """Summary rows, per-class rows and a throughput note for one principle."""
    summary, per_class = [], []
    note = ""
    human = [e for e in corpus.heldout if e.source.startswith("pyrit-")]
    splits = (
        ("held-out", corpus.heldout),
        ("held-out, human-labelled pairs only", human),
        ("HarmBench pairs (never trained)", list(corpus.harmbench)),
    )
    for split, examples in splits:
        predicted, seconds = _run(verifier, examples)
        figures = quality(examples, predicted, corpus.labels)
        row = [name, split, str(figures["n_exact"]), _fmt(figures["accuracy"]), _fmt(figures["macro_f1"]),
               f"{_fmt(figures['set_accuracy'])} (n={figures['n_partial']})"]  # fmt: skip
        if name == "safety":
            rules = quality(examples, [classify(e.prompt, e.response) for e in examples], corpus.labels)
            row += [_fmt(rules["accuracy"]), _fmt(rules["macro_f1"])]
        else:
            row += ["-", "-"]
        summary.append(row)
        if split == "held-out":
            note = f"{len(examples) / seconds:.0f} items/s"
            for label, stats in figures["per_class"].items():
                per_class.append([name, label, str(stats["count"]), _fmt(stats["precision"]),
                                  _fmt(stats["recall"]), _fmt(stats["f1"])])  # fmt: skip
    return summary, per_class, note


def markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/verifier_quality.md"))
    args = parser.parse_args()
    summary_headers = ["verifier", "split", "n exact", "acc %", "macro-F1 %", "set acc %", "keyword acc %",
                       "keyword macro-F1 %"]  # fmt: skip
    class_headers = ["verifier", "label", "held-out n", "precision %", "recall %", "F1 %"]
    summary: list[list[str]] = []
    per_class: list[list[str]] = []
    notes = []
    for name, factory in (("safety", SafetyVerifier), ("value", ValueVerifier)):
        verifier = factory(seed=args.seed)
        meta = verifier.metadata
        corpus = build_corpus(name, args.seed)
        rows, classes, speed = evaluate(name, verifier, corpus)
        summary += rows
        per_class += classes
        seconds = meta["seconds"]
        notes.append(
            f"- {name}: {meta['counts']['train']} train / {meta['counts']['heldout']} held-out pairs, "
            f"data {meta['data_hash'][:12]}, seed {meta['seed']}; the cached head took {seconds['total']} s "
            f"(corpus + embedding {seconds['embedding']} s, fit {seconds['fit']} s; embeddings may have been "
            f"cached already); scoring {speed} through verifier(items)"
        )
    print_table("verifier quality (held-out by prompt)", summary_headers, summary)
    print_table("per-class held-out figures", class_headers, per_class)
    for note in notes:
        print(note)
    machine = f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    text = "\n\n".join([
        f"### Verifier quality (seed {args.seed}; {machine})",
        markdown(summary_headers, summary),
        markdown(class_headers, per_class),
        "\n".join(notes),
        "Accuracy / macro-F1 over exactly labelled pairs (held-out = templated + human-labelled pairs; the "
        "second row keeps only the human-labelled pyrit pairs); *set acc* over pairs whose human label "
        "only says \"not unsafe\" (or \"not a refusal\"): prediction inside the allowed set. Held-out "
        "templated pairs use template phrasings never seen in training. HarmBench pairs: pyrit pairs "
        "whose prompt is a HarmBench behaviour, excluded from training.",
    ])  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(f"markdown written to {args.out}")


if __name__ == "__main__":
    main()
