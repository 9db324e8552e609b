"""Training prompts: catalogue data sets turned into task-labelled prompts, and a resumable mixture.

Only the *training* side of the verifiers' prompt split is used (``is_heldout(prompt, seed=0)`` false): the
held-out side is what ``safework rl eval`` asks, so no training claim is measured on a prompt the policy
was trained on. Evaluation-only sets (HarmBench, the over-refusal sets) have no source here.

A stage draws ``prompts_per_step`` prompts per step from its sources in proportion to their weights
(largest-remainder rounding, so the counts are exact and deterministic); each source is read in a seeded
shuffled order and reshuffled when it wraps. The cursors are plain integers in the checkpoint, so a
resumed run draws exactly the prompts the uninterrupted run would have.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from safework.core.errors import ConfigError
from safework.rl.rollout.base import PromptItem

BOXED_INSTRUCTION = "Put the final answer in \\boxed{}."
SPLIT_SEED = 0  # the verifier training's split: evaluation asks its held-out side, training the rest


def _text(record: Mapping[str, Any], key: str) -> str:
    return str(record.get(key) or "").strip()


def _golds(record: Mapping[str, Any]) -> list[str]:
    return [str(a).strip() for a in record.get("answers") or [] if str(a).strip()]


def _harmful(record: Mapping[str, Any]) -> PromptItem | None:
    prompt = _text(record, "prompt")
    return PromptItem(prompt, "safety", metadata={"query_type": "harmful"}) if prompt else None


def _contrast(record: Mapping[str, Any]) -> PromptItem | None:
    """rho contrast pairs: a harmful request (label 1) next to a benign look-alike (label 0)."""
    prompt = _text(record, "prompt")
    kind = "harmful" if str(record.get("label")) == "1" else "benign"
    return PromptItem(prompt, "safety", metadata={"query_type": kind}) if prompt else None


def _qa(record: Mapping[str, Any]) -> PromptItem | None:
    question, golds = _text(record, "question"), _golds(record)
    if not question or not golds:
        return None
    return PromptItem(question, "knowledge", golds[0], metadata={"query_type": "benign", "answers": golds})


def _math(record: Mapping[str, Any]) -> PromptItem | None:
    question, answer = _text(record, "question"), _text(record, "answer")
    if not question or not answer:
        return None
    return PromptItem(
        f"{question}\n{BOXED_INSTRUCTION}", "gsm8k_rule", answer, metadata={"query_type": "benign"}
    )


def _instruction(record: Mapping[str, Any]) -> PromptItem | None:
    prompt = _text(record, "prompt")
    return PromptItem(prompt, "normal", metadata={"query_type": "benign"}) if prompt else None


# catalogue data set -> record reader; the reader's task label is the default, a stage may override it.
SOURCES: dict[str, Callable[[Mapping[str, Any]], PromptItem | None]] = {
    "advbench": _harmful,
    "donotanswer": _harmful,
    "rho-contrast-pairs": _contrast,
    "nq-open": _qa,
    "truthfulqa": _qa,
    "gsm-symbolic": _math,
    "asdiv": _math,
    "medical-questions": _instruction,
    "alpacaeval-gpt4": _instruction,
    "ifeval-prompts": _instruction,
}


@functools.cache
def _catalogue_prompts(source: str) -> tuple[PromptItem, ...]:
    from safework.core.data import get_dataset
    from safework.verifiers.neural.corpus import is_heldout

    reader = SOURCES[source]
    seen: set[str] = set()
    items = []
    for record in get_dataset(source).load():
        item = reader(record)
        if item is None or item.prompt in seen or is_heldout(item.prompt, seed=SPLIT_SEED):
            continue
        seen.add(item.prompt)
        items.append(PromptItem(item.prompt, item.task_label, item.reference, source, item.metadata))
    return tuple(items)


@dataclass(frozen=True)
class SourceSpec:
    """One entry of a stage's ``data`` list."""

    source: str
    weight: float = 1.0
    label: str | None = None  # overrides the source's task label (e.g. knowledge_rule for math)
    query_type: str | None = None  # overrides the reader's harmful/benign
    limit: int | None = None  # use only the first ``limit`` training prompts (in catalogue order)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(
                f"unknown prompt source {self.source!r}; known: {', '.join(sorted(SOURCES))} "
                "(evaluation-only sets such as harmbench are never trained on)"
            )
        if not self.weight > 0:
            raise ConfigError(f"source {self.source!r}: weight must be > 0 (got {self.weight})")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"source {self.source!r}: limit must be >= 1 (got {self.limit})")

    def prompts(self) -> list[PromptItem]:
        items = list(_catalogue_prompts(self.source))[: self.limit]
        if self.label is not None or self.query_type is not None:
            items = [
                PromptItem(
                    i.prompt,
                    self.label or i.task_label,
                    i.reference,
                    i.source,
                    {**i.metadata, **({"query_type": self.query_type} if self.query_type else {})},
                )
                for i in items
            ]
        return items


def allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` into integer counts proportional to ``weights`` (largest remainder, ties by order)."""
    norm = sum(weights)
    exact = [total * w / norm for w in weights]
    counts = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


class PromptMixture:
    """Draws each step's prompts from several sources; its state is the per-source cursor."""

    def __init__(
        self, specs: Sequence[SourceSpec], seed: int, pools: Sequence[Sequence[PromptItem]] | None = None
    ):
        if not specs:
            raise ConfigError("a stage needs at least one prompt source in `data`")
        self.specs = list(specs)
        self.seed = seed
        self.pools = [list(p) for p in pools] if pools is not None else [s.prompts() for s in self.specs]
        for spec, pool in zip(self.specs, self.pools, strict=True):
            if not pool:
                raise ConfigError(
                    f"prompt source {spec.source!r} yielded no training prompts; check the data set "
                    f"(`safework data show {spec.source}`) or remove it from the stage"
                )
        self.cursors = [0] * len(self.specs)

    def _at(self, source: int, position: int) -> PromptItem:
        pool = self.pools[source]
        epoch, index = divmod(position, len(pool))
        order = list(range(len(pool)))
        random.Random(f"{self.seed}:{self.specs[source].source}:{epoch}").shuffle(order)
        return pool[order[index]]

    def draw(self, n: int) -> list[PromptItem]:
        counts = allocate(n, [s.weight for s in self.specs])
        items: list[PromptItem] = []
        for source, count in enumerate(counts):
            start = self.cursors[source]
            items.extend(self._at(source, start + k) for k in range(count))
            self.cursors[source] = start + count
        return items

    def state(self) -> list[int]:
        return list(self.cursors)

    def load_state(self, state: Sequence[int]) -> None:
        if len(state) != len(self.specs):
            raise ConfigError(
                f"the checkpoint's data cursor has {len(state)} sources but the stage has {len(self.specs)}; "
                "resume with the config the run was started with"
            )
        self.cursors = [int(c) for c in state]

    def sizes(self) -> dict[str, int]:
        return {spec.source: len(pool) for spec, pool in zip(self.specs, self.pools, strict=True)}
