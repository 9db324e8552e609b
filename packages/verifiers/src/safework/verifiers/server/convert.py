"""Wire ↔ Python conversions shared by the server and the client, so both read the proto the same way."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from safework.core.rpc.gen.verifier.v1 import verifier_pb2 as pb
from safework.core.types import VerifierScore
from safework.verifiers.base import VerifierItem

TASK_LABEL_KEY = "task_label"
ITEM_ID_KEY = "item_id"


@dataclass(frozen=True)
class ScoreError:
    """Why a verifier (or every verifier) gave no score for an item; ``code`` is a ResultCode name."""

    code: str
    message: str
    retryable: bool = False

    def __bool__(self) -> bool:  # an error is never a usable score
        return False


def code_name(code: int) -> str:
    """``RESULT_CODE_DEADLINE_EXCEEDED`` → ``DEADLINE_EXCEEDED``."""
    return str(pb.ResultCode.Name(code)).removeprefix("RESULT_CODE_")


def status(code: int, message: str = "", *, retryable: bool = False) -> pb.ResultStatus:
    return pb.ResultStatus(code=cast(Any, code), message=message, retryable=retryable)


def metadata_to_wire(metadata: Mapping[str, Any]) -> dict[str, str]:
    """Proto metadata is string → string: keep strings, JSON-encode everything else."""
    return {
        str(k): v if isinstance(v, str) else json.dumps(v, default=str, ensure_ascii=False)
        for k, v in metadata.items()
    }


def item_to_wire(item: VerifierItem, item_id: str = "") -> pb.ScoreItem:
    metadata = metadata_to_wire(item.metadata)
    task_label = metadata.pop(TASK_LABEL_KEY, "")
    message = pb.ScoreItem(
        item_id=item_id or metadata.pop(ITEM_ID_KEY, ""),
        prompt=item.prompt,
        response=item.response,
        metadata=metadata,
        task_label=task_label,
    )
    if item.reference is not None:
        message.reference = item.reference
    return message


def item_from_wire(message: pb.ScoreItem) -> VerifierItem:
    """The task label travels in ``metadata["task_label"]`` (where recipes and verifiers look for it)."""
    metadata: dict[str, Any] = dict(message.metadata)
    if message.task_label:
        metadata[TASK_LABEL_KEY] = message.task_label
    reference = message.reference if message.HasField("reference") else None
    return VerifierItem(message.prompt, message.response, reference=reference, metadata=metadata)


def _probabilities(raw: Any) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        return {}
    probs = raw.get("probabilities")
    if not isinstance(probs, Mapping):
        return {}
    out = {}
    for label, value in probs.items():
        if isinstance(value, int | float) and math.isfinite(value):
            out[str(label)] = float(value)
    return out


def score_to_wire(name: str, score: VerifierScore) -> pb.VerifierResult:
    return pb.VerifierResult(
        verifier=name,
        principle=score.principle,
        label=score.label,
        score=score.score,
        label_probabilities=_probabilities(score.raw),
        categories=list(score.categories),
        raw_json=json.dumps(score.raw, default=str, ensure_ascii=False) if score.raw is not None else "",
        status=status(pb.RESULT_CODE_OK),
    )


def error_to_wire(
    name: str, principle: str, code: int, message: str, *, retryable: bool = False
) -> pb.VerifierResult:
    return pb.VerifierResult(
        verifier=name, principle=principle, status=status(code, message, retryable=retryable)
    )


def result_from_wire(result: pb.VerifierResult) -> VerifierScore | ScoreError:
    """A :class:`VerifierScore` when the result is OK, else a :class:`ScoreError` (never a made-up score)."""
    if result.status.code != pb.RESULT_CODE_OK:
        return error_from_wire(result.status)
    raw: Any = None
    if result.raw_json:
        try:
            raw = json.loads(result.raw_json)
        except json.JSONDecodeError:
            raw = result.raw_json
    return VerifierScore(
        principle=result.principle,
        label=result.label,
        score=min(max(result.score, 0.0), 1.0),
        categories=tuple(result.categories),
        raw=raw,
    )


def error_from_wire(message: pb.ResultStatus) -> ScoreError:
    code = code_name(message.code) if message.code in pb.ResultCode.values() else f"UNKNOWN_{message.code}"
    return ScoreError(code, message.message or "no explanation given", message.retryable)
