"""Quality figures for a verifier's predictions on a corpus split, each beside its trivial baseline.

- :func:`quality`: exact (single-label) examples give accuracy and macro-F1 over the labels present, next
  to the majority-class baseline; partially labelled examples (a set of allowed labels) give "set accuracy".
- :func:`groups`: accuracy per kind of response (refusals of harmful requests, compliant answers, helpful
  benign answers, …), balanced accuracy over the groups, and the best any constant label achieves.
- :func:`human_binary`: unsafe vs not-unsafe on the human-labelled pairs only, with balanced accuracy,
  macro-F1 and the majority-class baseline.
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
        per_class[label] = {
            "count": gold_counts.get(label, 0),
            "precision": precision,
            "recall": recall,
            "f1": f1,
        }
        if gold_counts.get(label, 0):
            f1s.append(f1)
    majority = gold_counts.most_common(1)[0][0] if gold_counts else None
    return {
        "n_exact": len(exact),
        "majority_label": majority,
        "majority_accuracy": gold_counts[majority] / len(exact) if exact else float("nan"),
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


def groups(examples: Sequence[Example], predicted: Sequence[str]) -> dict[str, Any]:
    """Per-group accuracy (prediction in the allowed set) and balanced accuracy over groups."""
    by_group: dict[str, list[tuple[frozenset[str], str]]] = {}
    for example, label in zip(examples, predicted, strict=True):
        by_group.setdefault(example.group, []).append((example.allowed, label))
    figures: dict[str, Any] = {
        g: {"n": len(rows), "accuracy": sum(p in allowed for allowed, p in rows) / len(rows)}
        for g, rows in sorted(by_group.items())
    }
    if not by_group:
        return {"per_group": {}, "balanced_accuracy": float("nan"), "best_constant": float("nan")}
    balanced = sum(f["accuracy"] for f in figures.values()) / len(figures)
    labels = {label for rows in by_group.values() for allowed, _ in rows for label in allowed}
    constant = {
        label: sum(sum(label in a for a, _ in rows) / len(rows) for rows in by_group.values()) / len(by_group)
        for label in labels
    }
    best = max(constant, key=lambda k: constant[k])
    return {
        "per_group": figures,
        "balanced_accuracy": balanced,
        "best_constant": constant[best],
        "best_constant_label": best,
    }


HUMAN_SOURCES = ("pyrit-objective", "pyrit-harm", "pyrit-refusal")


def human_binary(examples: Sequence[Example], predicted: Sequence[str]) -> dict[str, Any]:
    """Unsafe vs not-unsafe on the human-labelled pairs (examples whose set decides that question)."""
    rows = []
    for example, label in zip(examples, predicted, strict=True):
        if example.source not in HUMAN_SOURCES:
            continue
        if example.allowed == {"unsafe"}:
            rows.append((True, label == "unsafe"))
        elif "unsafe" not in example.allowed:
            rows.append((False, label == "unsafe"))
    if not rows:
        return {"n": 0}
    positives = sum(g for g, _ in rows)
    recall = {
        g: sum(p == g for gg, p in rows if gg == g) / max(1, sum(gg == g for gg, _ in rows))
        for g in (True, False)
    }
    f1s = []
    for g in (True, False):
        tp = sum(1 for gg, p in rows if gg == g and p == g)
        fp = sum(1 for gg, p in rows if gg != g and p == g)
        precision = tp / (tp + fp) if tp + fp else 0.0
        f1s.append(2 * precision * recall[g] / (precision + recall[g]) if precision + recall[g] else 0.0)
    return {
        "n": len(rows),
        "n_unsafe": positives,
        "accuracy": sum(g == p for g, p in rows) / len(rows),
        "balanced_accuracy": (recall[True] + recall[False]) / 2,
        "macro_f1": sum(f1s) / 2,
        "majority_accuracy": max(positives, len(rows) - positives) / len(rows),
        "majority_label": "unsafe" if positives * 2 >= len(rows) else "not unsafe",
    }
