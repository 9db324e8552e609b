"""Wire ↔ Python conversions shared by the server and the client, so both read the proto the same way."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, cast

from safework.core.rpc.gen.verifier.v1 import verifier_pb2 as pb
from safework.core.types import VerifierScore
from safework.verifiers.base import VerifierItem
from safework.verifiers.failure import ScoreError
from safework.verifiers.recipe import RewardBreakdown

__all__ = ["ScoreError"]  # re-exported: the server's callers import it from here

TASK_LABEL_KEY = "task_label"
ITEM_ID_KEY = "item_id"


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


def error_status(error: ScoreError) -> pb.ResultStatus:
    """A :class:`ScoreError` as a ResultStatus (an unknown code name becomes VERIFIER_FAILED)."""
    name = f"RESULT_CODE_{error.code}"
    code = (
        pb.ResultCode.Value(name)
        if name in pb.ResultCode.DESCRIPTOR.values_by_name
        else pb.RESULT_CODE_VERIFIER_FAILED
    )
    return status(code, error.message, retryable=error.retryable)


def breakdown_to_wire(
    breakdown: RewardBreakdown, format_verifier: str, recipe_source: str = ""
) -> pb.RewardBreakdown:
    message = pb.RewardBreakdown(
        status=status(pb.RESULT_CODE_OK) if breakdown.error is None else error_status(breakdown.error),
        task_label=breakdown.task_label,
        known_label=breakdown.known_label,
        format_verifier=format_verifier,
        format_weight=breakdown.format_weight,
        recipe_source=recipe_source,
    )
    if breakdown.total is not None:
        message.total = breakdown.total
    if breakdown.format_score is not None:
        message.format_score = breakdown.format_score
    for name, weight in breakdown.weights.items():
        component = message.components.add(verifier=name, weight=weight, missing=name in breakdown.missing)
        if name in breakdown.scores:
            component.score = breakdown.scores[name]
    return message


def breakdown_from_wire(message: pb.RewardBreakdown) -> RewardBreakdown:
    """The server's breakdown as the in-process scorer would have returned it (its total, not recomputed)."""
    ok = message.status.code == pb.RESULT_CODE_OK
    error = None if ok else error_from_wire(message.status)
    if ok and not message.HasField("total"):
        error = ScoreError("UNSPECIFIED", "the server sent an OK reward without a total; upgrade or fix it")
    return RewardBreakdown(
        task_label=message.task_label,
        total=message.total if error is None else None,
        format_score=message.format_score if message.HasField("format_score") else None,
        format_weight=message.format_weight,
        scores={c.verifier: c.score for c in message.components if c.HasField("score")},
        weights={c.verifier: c.weight for c in message.components},
        missing=tuple(c.verifier for c in message.components if c.missing),
        known_label=message.known_label,
        error=error,
    )
