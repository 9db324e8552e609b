"""ScoreSteps: step-level scoring of reasoning traces as they are generated (spec/safeladder.md §6a).

What a step score is. A trace answers ``prompt``; its steps s_1..s_t are the paragraphs of the ``<think>``
block, sent without the tags. Appending step t scores the *prefix so far*: each of the trace's verifiers
judges the item ``(prompt, response = "<think>\\n" + "\\n\\n".join(s_1..s_t))`` — with ``"\\n</think>"``
appended when the step is final (``answer_format.thinking_prefix``) — exactly as it judges a whole
response. A non-final prefix is an unclosed ``<think>`` block, which ``answer_format`` reads as truncated
reasoning with an *empty* answer: verifiers that judge only the final answer (knowledge, judges) see no
answer until the final step. Its step score v_k is the verifier's graded score on that item (the expected
mapped score under its label distribution; for a binary good/bad or true/false verifier that is
P(positive label)). The step value is the weighted mean

    V(x, s_≤t) = Σ_k w_k · v_k / Σ_k w_k     over the verifiers whose result is OK,

with w_k the TraceOpen weight of verifier k's principle (all 1 when no weights are given; a principle not
named in a non-empty weight map gets 0). V is in [0, 1], so thresholds (τ in value-guided search) do not
depend on how many verifiers ran. Steps of many streams share the verifiers' dynamic batches.

Each stream is handled in order: exactly one response per StepAppend, in the order sent. Bad messages
get a status that says what was wrong, and the stream goes on: an out-of-order step or unknown trace is
answered INVALID_ITEM; a refused TraceOpen (unknown verifier: VERIFIER_NOT_FOUND, bad weights...) is
reported, with its reason, in the response to each StepAppend of that trace; closing a trace that is not
open is a no-op. Verifiers mark themselves unfit for prefixes with ``supports_steps = False``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc

from safework.core.answer_format import thinking_prefix
from safework.core.rpc.gen.verifier.v1 import verifier_pb2 as pb
from safework.verifiers.base import VerifierItem
from safework.verifiers.server import convert
from safework.verifiers.server.service import check_decoded, supports_steps

_MAX_REFUSED = 256  # refused trace ids remembered per stream (oldest forgotten first)

if TYPE_CHECKING:
    from safework.verifiers.server.service import VerifierService


@dataclass
class _Trace:
    prompt: str
    verifiers: list[str]
    weights: dict[str, float]
    metadata: dict[str, str]
    task_label: str
    reference: str | None
    steps: list[str] = field(default_factory=list)
    finished: bool = False


class StepStream:
    """The state of one ScoreSteps call: its open traces, and why refused traces were refused."""

    def __init__(self, service: VerifierService, context: grpc.ServicerContext) -> None:
        self.service, self.context = service, context
        self.traces: dict[str, _Trace] = {}
        self.refused: dict[str, pb.ResultStatus] = {}

    def run(self, requests: Iterator[pb.ScoreStepsRequest]) -> Iterator[pb.ScoreStepsResponse]:
        for message in requests:
            check_decoded(message, self.context)
            kind = message.WhichOneof("kind")
            if kind == "open":
                self.refused.pop(message.open.trace_id, None)
                refusal = self._open(message.open)
                if refusal is not None:
                    if len(self.refused) >= _MAX_REFUSED:
                        self.refused.pop(next(iter(self.refused)))
                    self.refused[message.open.trace_id] = refusal
            elif kind == "step":
                yield self._step(message.step)
            elif kind == "close":
                self.traces.pop(message.close.trace_id, None)
            else:
                yield _bad("", 0, "empty ScoreStepsRequest: set exactly one of open, step or close")

    def _open(self, msg: pb.TraceOpen) -> pb.ResultStatus | None:
        """Open the trace, or return why not."""
        limits = self.service.config.limits
        if not msg.trace_id:
            return _invalid("TraceOpen.trace_id is empty; give every trace a unique id")
        if msg.trace_id in self.traces:
            return _invalid(f"trace {msg.trace_id!r} is already open; close it or pick a new id")
        if len(self.traces) >= limits.max_open_traces:
            return _invalid(
                f"this stream already has {limits.max_open_traces} open traces (the limit); close finished "
                "traces (TraceClose) before opening more"
            )
        names = list(msg.verifiers)
        unknown = self.service.unknown(names)
        if unknown:
            return convert.status(pb.RESULT_CODE_VERIFIER_NOT_FOUND, self.service.not_found_message(unknown))
        unfit = [n for n in names if not supports_steps(self.service.verifiers[n])]
        if unfit:
            return _invalid(f"verifiers {unfit} cannot score partial traces (supports_steps=false)")
        if not names:
            names = sorted(n for n, v in self.service.verifiers.items() if supports_steps(v))
        if not names:
            return convert.status(pb.RESULT_CODE_NO_VERIFIER, "this server has no step-capable verifier")
        weights = dict(msg.principle_weights)
        bad_weight = [p for p, w in weights.items() if not (math.isfinite(w) and w >= 0)]
        if bad_weight:
            return _invalid(f"principle weights must be finite and >= 0; fix {bad_weight}")
        if weights and not any(weights.get(self.service.verifiers[n].principle, 0.0) > 0 for n in names):
            return _invalid(
                f"no verifier of this trace judges a principle with positive weight (weights {weights}); "
                "weight at least one of their principles"
            )
        reference = msg.reference if msg.HasField("reference") else None
        self.traces[msg.trace_id] = _Trace(
            msg.prompt, names, weights, dict(msg.metadata), msg.task_label, reference
        )
        return None

    def _step(self, msg: pb.StepAppend) -> pb.ScoreStepsResponse:
        trace = self.traces.get(msg.trace_id)
        if trace is None and msg.trace_id in self.refused:
            refusal = self.refused[msg.trace_id]
            text = f"trace {msg.trace_id!r} is not open: its TraceOpen was refused: {refusal.message}"
            return _reply(msg.trace_id, msg.step_index, convert.status(refusal.code, text))
        if trace is None:
            return _bad(msg.trace_id, msg.step_index, f"unknown trace {msg.trace_id!r}; send TraceOpen first")
        if trace.finished:
            return _bad(msg.trace_id, msg.step_index, f"trace {msg.trace_id!r} already ended (is_final)")
        if msg.step_index != len(trace.steps):
            return _bad(
                msg.trace_id,
                msg.step_index,
                f"step_index {msg.step_index} is out of order for trace {msg.trace_id!r}: expected "
                f"{len(trace.steps)} (steps are appended in order, from 0)",
            )
        if len(trace.steps) >= self.service.config.limits.max_steps_per_trace:
            return _bad(
                msg.trace_id,
                msg.step_index,
                f"trace {msg.trace_id!r} reached the limit of "
                f"{self.service.config.limits.max_steps_per_trace} steps; open a new trace",
            )
        trace.steps.append(msg.text)
        trace.finished = msg.is_final
        metadata: dict[str, str] = {**trace.metadata, "trace_step": str(msg.step_index)}
        if trace.task_label:
            metadata[convert.TASK_LABEL_KEY] = trace.task_label
        item = VerifierItem(
            trace.prompt,
            thinking_prefix(trace.steps, msg.is_final),
            reference=trace.reference,
            metadata=metadata,
        )
        wait_until = self.service.wait_until(self.context)
        results = self.service.score_many([(msg.step_index, item, trace.verifiers)], wait_until, self.context)
        ordered = [results[(msg.step_index, name)] for name in trace.verifiers]
        response = pb.ScoreStepsResponse(trace_id=msg.trace_id, step_index=msg.step_index, results=ordered)
        total = weight_sum = 0.0
        for result in ordered:
            weight = trace.weights.get(result.principle, 0.0) if trace.weights else 1.0
            if result.status.code == pb.RESULT_CODE_OK and weight > 0:
                total += weight * result.score
                weight_sum += weight
        if weight_sum > 0:
            response.value = total / weight_sum
            response.status.CopyFrom(convert.status(pb.RESULT_CODE_OK))
        else:
            first = next(r.status for r in ordered if r.status.code != pb.RESULT_CODE_OK)
            response.status.CopyFrom(
                convert.status(
                    first.code,
                    f"no weighted verifier could score step {msg.step_index}: {first.message}",
                    retryable=first.retryable,
                )
            )
        return response


def _reply(trace_id: str, step_index: int, status: pb.ResultStatus) -> pb.ScoreStepsResponse:
    return pb.ScoreStepsResponse(trace_id=trace_id, step_index=step_index, status=status)


def _bad(trace_id: str, step_index: int, message: str) -> pb.ScoreStepsResponse:
    return _reply(trace_id, step_index, convert.status(pb.RESULT_CODE_INVALID_ITEM, message))


def _invalid(message: str) -> pb.ResultStatus:
    return convert.status(pb.RESULT_CODE_INVALID_ITEM, message)
