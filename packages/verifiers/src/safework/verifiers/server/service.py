"""The VerifierService servicer: batch scoring, step scoring, listing — over the dynamic batchers.

Status choices (the bad-input matrix in tests/verifiers/test_server_bad_inputs.py pins them):

- whole-request problems fail the call: no items or more than ``max_items`` → INVALID_ARGUMENT; bytes that
  are not a valid message (e.g. a string field holding invalid UTF-8) → INVALID_ARGUMENT; a request naming
  *only* verifiers this server does not have → NOT_FOUND; a deadline already spent → DEADLINE_EXCEEDED;
  a message over the size limit → RESOURCE_EXHAUSTED (gRPC's own check);
- everything else is reported per (item, verifier) with a ResultCode and the call succeeds: an unknown
  verifier next to known ones → VERIFIER_NOT_FOUND, a knowledge item without reference → INVALID_ITEM
  naming the item index, a verifier that raised → VERIFIER_FAILED, an item whose deadline passed while
  queued or running → DEADLINE_EXCEEDED (retryable). Other verifiers of the same item still answer;
- except when the deadline left *nothing* scored (every result DEADLINE_EXCEEDED): then the call itself
  fails with DEADLINE_EXCEEDED, as any gRPC call that ran out of time does.

Recipe mode (a request naming no verifiers): each item runs its task label's format verifier and the
recipe components served here, and its ``reward`` is composed by :func:`safework.verifiers.recipe.compose`
— the function the in-process scorer uses — so remote and local rewards agree. An optional component not
served counts 1.0 (listed as missing); a required one not served, or any component that failed or ran
late, leaves the item without a reward (status says which and why), never with a partial sum.

The server replies a little before the call's deadline (``reply_margin_s``) so partial results reach the
client instead of being replaced by a bare DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError

from safework.core.errors import ConfigError
from safework.core.rpc import abort_deadline, remaining
from safework.core.rpc.gen.verifier.v1 import verifier_pb2 as pb
from safework.core.rpc.gen.verifier.v1 import verifier_pb2_grpc as pb_grpc
from safework.core.types import VerifierScore
from safework.verifiers.base import Verifier, VerifierInputError, VerifierItem
from safework.verifiers.failure import ScoreError, invalid_item
from safework.verifiers.recipe import DEFAULT_RECIPE_PATH, Recipe
from safework.verifiers.server import convert
from safework.verifiers.server.batching import BatcherClosed, DynamicBatcher, QueueExpired, VerifierFailed
from safework.verifiers.server.limits import (
    RequestLimits,
    RequestRejected,
    check_score_request,
    server_limits_message,
)

log = logging.getLogger("safework.verifiers.server")

SERVICE = "safework.verifier.v1.VerifierService"


@dataclass(frozen=True)
class ServerConfig:
    """Batching and deadline knobs. ``max_batch=1`` turns batching off (one forward pass per item);
    ``cross_request=False`` batches only within a call (see below)."""

    max_batch: int = 32
    # 20 ms lets every concurrent caller's next item join the batch on a CPU where a forward pass takes
    # tens of ms; a reward call in RL waits on seconds of generation anyway (measured: RESULTS.md).
    max_wait_ms: float = 20.0
    workers: int = 1
    limits: RequestLimits = field(default_factory=RequestLimits)
    verifier_timeout_s: float | None = None
    reply_margin_s: float = 0.05
    # False: a forward pass never mixes calls — each call's items form their own batch (at most max_batch),
    # the shape of a client-batched reward server such as OpenRLHF's serve_rm; kept for comparisons.
    cross_request: bool = True

    def __post_init__(self) -> None:
        if self.verifier_timeout_s is not None and not self.verifier_timeout_s > 0:
            raise ConfigError(f"verifier_timeout_s must be positive or None, got {self.verifier_timeout_s}.")
        if self.reply_margin_s < 0:
            raise ConfigError(f"reply_margin_s must be >= 0, got {self.reply_margin_s}.")


@dataclass(frozen=True)
class Undecodable:
    """Stands in for a request gRPC could not parse, so the handler can answer INVALID_ARGUMENT."""

    message_type: str
    error: str


def supports_steps(verifier: Verifier) -> bool:
    """Verifiers opt out of step scoring with a ``supports_steps = False`` class attribute."""
    return bool(getattr(verifier, "supports_steps", True))


def _rejected(context: grpc.ServicerContext, code: str, message: str) -> NoReturn:
    context.abort(getattr(grpc.StatusCode, code), message)
    raise AssertionError("context.abort returned")  # pragma: no cover


def check_decoded(request: Any, context: grpc.ServicerContext) -> None:
    if isinstance(request, Undecodable):
        _rejected(
            context,
            "INVALID_ARGUMENT",
            f"the request is not a valid {request.message_type} ({request.error}); string fields must be "
            "valid UTF-8 — decode or replace invalid bytes before sending.",
        )


class VerifierService(pb_grpc.VerifierServiceServicer):
    """Serves ``verifiers`` (name → loaded verifier); call :meth:`close` after the server stopped."""

    def __init__(
        self,
        verifiers: Mapping[str, Verifier],
        config: ServerConfig | None = None,
        *,
        recipe: Recipe | None = None,
        sources: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config or ServerConfig()
        self.verifiers = dict(verifiers)
        # The package default (spec §4) unless the caller names one (`safework verifiers serve --recipe`).
        self.recipe = recipe if recipe is not None else Recipe.load(DEFAULT_RECIPE_PATH)
        self.sources = dict(sources or {})
        unserved = [n for n in self.recipe.format_names() if n not in self.verifiers]
        if unserved:  # fine for callers that always name verifiers; recipe-mode items then say why
            log.info(
                "format verifier(s) %s of recipe %s are not served: recipe-mode items that need them get no "
                "reward; serve them too (load_verifiers(names, recipe) adds them)",
                ", ".join(unserved),
                self.recipe.source,
            )
        self.batchers = {
            name: DynamicBatcher(
                name,
                verifier,
                max_batch=self.config.max_batch,
                max_wait_s=self.config.max_wait_ms / 1000.0,
                workers=self.config.workers,
                cross_request=self.config.cross_request,
            )
            for name, verifier in self.verifiers.items()
        }

    def close(self, timeout: float = 5.0) -> None:
        for batcher in self.batchers.values():
            batcher.close(timeout)

    # -- scoring core shared by Score and ScoreSteps ----------------------------------------------------
    def wait_until(self, context: grpc.ServicerContext) -> float | None:
        """Monotonic instant by which results must be ready; aborts when the deadline is already spent."""
        left = remaining(context)
        if left is not None and left <= 0:
            abort_deadline(context, "waiting to start scoring")
        now = time.monotonic()
        ends = []
        if left is not None:
            ends.append(now + left - min(self.config.reply_margin_s, 0.2 * left))
        if self.config.verifier_timeout_s is not None:
            ends.append(now + self.config.verifier_timeout_s)
        return min(ends) if ends else None

    def unknown(self, names: Sequence[str]) -> list[str]:
        return [name for name in names if name not in self.verifiers]

    def not_found_message(self, names: Sequence[str]) -> str:
        known = ", ".join(sorted(self.verifiers)) or "none"
        return (
            f"no verifier named {', '.join(repr(n) for n in names)} on this server (installed: {known}); "
            "use a name from ListVerifiers, or start the server with that verifier"
        )

    def score_many(
        self,
        plan: Sequence[tuple[int, VerifierItem, Sequence[str]]],
        wait_until: float | None,
        context: grpc.ServicerContext,
    ) -> dict[tuple[int, str], pb.VerifierResult]:
        """Score each (index, item) with its verifiers; every pair gets a result, failed ones included."""
        results: dict[tuple[int, str], pb.VerifierResult] = {}
        waiting: dict[str, tuple[list[int], list[Future[VerifierScore]]]] = {}
        by_verifier: dict[str, list[tuple[int, VerifierItem]]] = {}
        for index, item, names in plan:
            for name in names:
                verifier = self.verifiers.get(name)
                if verifier is None:
                    results[(index, name)] = convert.error_to_wire(
                        name, "", pb.RESULT_CODE_VERIFIER_NOT_FOUND, self.not_found_message([name])
                    )
                    continue
                try:
                    verifier.validate([item])
                except VerifierInputError as exc:
                    results[(index, name)] = convert.error_to_wire(
                        name,
                        verifier.principle,
                        pb.RESULT_CODE_INVALID_ITEM,
                        invalid_item(index, exc).message,
                    )
                    continue
                by_verifier.setdefault(name, []).append((index, item))
        for name, entries in by_verifier.items():
            futures = self.batchers[name].submit([item for _, item in entries], wait_until)
            waiting[name] = ([index for index, _ in entries], futures)
        everything = [f for _, futures in waiting.values() for f in futures]
        context.add_callback(lambda: [f.cancel() for f in everything])  # the caller left: skip its items
        for name, (indices, futures) in waiting.items():
            principle = self.verifiers[name].principle
            for index, future in zip(indices, futures, strict=True):
                results[(index, name)] = self._collect(name, principle, future, wait_until)
        return results

    def _collect(
        self, name: str, principle: str, future: Future[VerifierScore], wait_until: float | None
    ) -> pb.VerifierResult:
        timeout = None if wait_until is None else max(wait_until - time.monotonic(), 0.0)
        try:
            return convert.score_to_wire(name, future.result(timeout=timeout))
        except FutureTimeout:
            future.cancel()
            return convert.error_to_wire(
                name,
                principle,
                pb.RESULT_CODE_DEADLINE_EXCEEDED,
                f"the {name} verifier did not finish before the deadline; retry with a longer timeout",
                retryable=True,
            )
        except QueueExpired as exc:
            code, retryable = pb.RESULT_CODE_DEADLINE_EXCEEDED, True
            return convert.error_to_wire(name, principle, code, str(exc), retryable=retryable)
        except VerifierFailed as exc:
            return convert.error_to_wire(name, principle, pb.RESULT_CODE_VERIFIER_FAILED, str(exc))
        except BatcherClosed as exc:
            msg = f"{exc}; retry on another replica"
            return convert.error_to_wire(name, principle, pb.RESULT_CODE_UNAVAILABLE, msg, retryable=True)

    # -- RPCs ---------------------------------------------------------------------------------------------
    def Score(self, request: pb.ScoreRequest, context: grpc.ServicerContext) -> pb.ScoreResponse:
        check_decoded(request, context)
        try:
            check_score_request(request, self.config.limits)
        except RequestRejected as exc:
            _rejected(context, exc.code, str(exc))
        asked = list(request.verifiers)
        if asked and len(self.unknown(asked)) == len(asked):
            _rejected(context, "NOT_FOUND", self.not_found_message(asked))
        wait_until = self.wait_until(context)
        plan = []
        for index, message in enumerate(request.items):
            names = asked or [n for n in self.recipe.needs(message.task_label) if n in self.verifiers]
            plan.append((index, convert.item_from_wire(message), names))
        results = self.score_many(plan, wait_until, context)
        if results and all(r.status.code == pb.RESULT_CODE_DEADLINE_EXCEEDED for r in results.values()):
            abort_deadline(context, f"scoring {len(plan)} items: none was scored in time")
        response = pb.ScoreResponse(request_id=request.request_id)
        for (index, _, names), message in zip(plan, request.items, strict=True):
            item = response.items.add(item_id=message.item_id, index=index)
            item.results.extend(results[(index, name)] for name in names)
            item.status.CopyFrom(self._item_status(index, message.task_label, list(item.results)))
            if not asked:
                item.reward.CopyFrom(self._reward(message.task_label, item.results))
        return response

    def _reward(self, task_label: str, results: Sequence[pb.VerifierResult]) -> pb.RewardBreakdown:
        """The recipe reward from this item's results, through the same ``compose`` as in-process scoring."""
        scores: dict[str, float | ScoreError] = {
            r.verifier: r.score if r.status.code == pb.RESULT_CODE_OK else convert.error_from_wire(r.status)
            for r in results
        }
        breakdown = self.recipe.compose(task_label, scores)
        return convert.breakdown_to_wire(
            breakdown, self.recipe.format_verifier_for(task_label), self.recipe.source
        )

    def _item_status(self, index: int, task_label: str, results: list[pb.VerifierResult]) -> pb.ResultStatus:
        if not results:
            why = (
                f"its task label {task_label!r} needs verifiers {list(self.recipe.needs(task_label))}, "
                f"none served here (installed: {', '.join(sorted(self.verifiers)) or 'none'})"
            )
            return convert.status(
                pb.RESULT_CODE_NO_VERIFIER,
                f"item {index} was not scored: {why}; serve them or name verifiers explicitly",
            )
        if any(r.status.code == pb.RESULT_CODE_OK for r in results):
            return convert.status(pb.RESULT_CODE_OK)
        first = results[0].status
        return convert.status(
            first.code, f"no verifier could score item {index}: {first.message}", retryable=first.retryable
        )

    def ScoreSteps(
        self, request_iterator: Iterator[pb.ScoreStepsRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.ScoreStepsResponse]:
        from safework.verifiers.server.steps import StepStream

        yield from StepStream(self, context).run(request_iterator)

    def ListVerifiers(
        self, request: pb.ListVerifiersRequest, context: grpc.ServicerContext
    ) -> pb.ListVerifiersResponse:
        check_decoded(request, context)
        response = pb.ListVerifiersResponse(
            limits=server_limits_message(self.config.limits, self.config.max_batch, self.config.max_wait_ms)
        )
        for name in sorted(self.verifiers):
            response.verifiers.append(self._info(name, self.verifiers[name]))
        return response

    def _info(self, name: str, verifier: Verifier) -> pb.VerifierInfo:
        scheme = getattr(verifier, "scheme", None)
        label_scores = {str(k): float(v) for k, v in scheme.scores.items()} if scheme is not None else {}
        doc = (type(verifier).__doc__ or "").strip().splitlines()
        return pb.VerifierInfo(
            name=name,
            principle=verifier.principle,
            labels=list(verifier.labels),
            label_scores=label_scores,
            supports_steps=supports_steps(verifier),
            ready=True,
            source=self.sources.get(name, type(verifier).__module__),
            description=doc[0] if doc else "",
            requires_reference=verifier.requires_reference,
        )


def _lenient(message_type: Any) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return message_type.FromString(data)
        except DecodeError as exc:
            return Undecodable(message_type.DESCRIPTOR.full_name, str(exc) or "unparseable bytes")

    return parse


def add_to_server(servicer: VerifierService, server: grpc.Server) -> None:
    """Like the generated ``add_VerifierServiceServicer_to_server``, but a request that cannot be parsed
    reaches the handler (as :class:`Undecodable`) and gets INVALID_ARGUMENT instead of gRPC's INTERNAL."""
    handlers = {
        "Score": grpc.unary_unary_rpc_method_handler(
            servicer.Score,
            request_deserializer=_lenient(pb.ScoreRequest),
            response_serializer=pb.ScoreResponse.SerializeToString,
        ),
        "ScoreSteps": grpc.stream_stream_rpc_method_handler(
            servicer.ScoreSteps,
            request_deserializer=_lenient(pb.ScoreStepsRequest),
            response_serializer=pb.ScoreStepsResponse.SerializeToString,
        ),
        "ListVerifiers": grpc.unary_unary_rpc_method_handler(
            servicer.ListVerifiers,
            request_deserializer=_lenient(pb.ListVerifiersRequest),
            response_serializer=pb.ListVerifiersResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
