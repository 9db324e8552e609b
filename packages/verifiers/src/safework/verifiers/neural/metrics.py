"""Quality figures for a verifier's predictions on a corpus split: accuracy, macro-F1, per-class counts.

Exact (single-label) examples give accuracy and macro-F1 over the labels present; partially labelled
examples (a set of allowed labels) give "set accuracy" — the share whose prediction falls in the set.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from safework.verifiers.neural.corpus import Example


def quality(examples: Sequence[Example], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Figures for ``predicted`` labels of ``examples`` (same order)."""
    if len(examples) != len(predicted):
        raise ValueError(f"{len(examples)} examples but {len(predicted)} predictions")
    exact = [(e.label, p) for e, p in zip(examples, predicted, strict=True) if e.exact]
    partial = [(e.allowed, p) for e, p in zip(examples, predicted, strict=True) if not e.exact]
    gold_counts = Counter(g for g, _ in exact)
    per_class: dict[str, dict[str, float]] = {}
    f1s = []
    for label in labels:
        tp = sum(1 for g, p in exact if g == label and p == label)
        fp = sum(1 for g, p in exact if g != label and p == label)
        fn = sum(1 for g, p in exact if g == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"count": gold_counts.get(label, 0), "precision": precision, "recall": recall,
                            "f1": f1}  # fmt: skip
        if gold_counts.get(label, 0):
            f1s.append(f1)
    return {
        "n_exact": len(exact),
        "accuracy": sum(1 for g, p in exact if g == p) / len(exact) if exact else float("nan"),
        "macro_f1": sum(f1s) / len(f1s) if f1s else float("nan"),
        "n_partial": len(partial),
        "set_accuracy": sum(1 for s, p in partial if p in s) / len(partial) if partial else float("nan"),
        "per_class": per_class,
    }


def by_source(examples: Sequence[Example], predicted: Sequence[str]) -> dict[str, dict[str, float]]:
    """Share of predictions inside the allowed set, per example source (where the errors come from)."""
    totals: Counter[str] = Counter()
    right: Counter[str] = Counter()
    for example, label in zip(examples, predicted, strict=True):
        totals[example.source] += 1
        right[example.source] += label in example.allowed
    return {s: {"n": totals[s], "accuracy": right[s] / totals[s]} for s in sorted(totals)}
