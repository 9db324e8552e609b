"""RewardClient: score items on a remote reward server as if the verifiers were local.

Failures stay explicit: a (item, verifier) pair that could not be scored comes back as a
:class:`ScoreError` (falsy, with the server's code and message), never as a number. Transport problems
(server down, bad request) raise :class:`~safework.core.errors.RpcError` with the gRPC status and the
server's explanation. The channel comes from core's ``connect``, so UNAVAILABLE is retried with backoff.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import grpc

from safework.core.errors import RpcError
from safework.core.rpc import ClientTls, check_health, connect
from safework.core.rpc.gen.verifier.v1 import verifier_pb2 as pb
from safework.core.rpc.gen.verifier.v1 import verifier_pb2_grpc as pb_grpc
from safework.core.types import VerifierScore
from safework.verifiers.base import VerifierItem
from safework.verifiers.recipe import RewardBreakdown
from safework.verifiers.server import convert
from safework.verifiers.server.convert import ScoreError
from safework.verifiers.server.service import SERVICE


class ItemScores(dict[str, VerifierScore | ScoreError]):
    """Verifier name → score or error for one item; ``error`` is set when no verifier could run at all.

    ``reward`` is the server's recipe reward (recipe mode: the call named no verifiers), composed by the
    same function as in-process scoring; None when verifiers were named or the server predates it."""

    def __init__(
        self, item_id: str, error: ScoreError | None = None, reward: RewardBreakdown | None = None
    ) -> None:
        super().__init__()
        self.item_id, self.error, self.reward = item_id, error, reward


@dataclass(frozen=True)
class VerifierDescription:
    """One entry of ListVerifiers."""

    name: str
    principle: str
    labels: tuple[str, ...]
    label_scores: Mapping[str, float]
    requires_reference: bool
    supports_steps: bool
    ready: bool
    source: str
    description: str


@dataclass(frozen=True)
class OpenTrace:
    trace_id: str
    prompt: str
    verifiers: Sequence[str] = ()
    principle_weights: Mapping[str, float] = field(default_factory=dict)
    task_label: str = ""
    reference: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AppendStep:
    trace_id: str
    step_index: int
    text: str
    is_final: bool = False


@dataclass(frozen=True)
class CloseTrace:
    trace_id: str


StepMessage = OpenTrace | AppendStep | CloseTrace


@dataclass(frozen=True)
class StepResult:
    """The score of one trace prefix: ``value`` is None when the step could not be scored (see ``error``)."""

    trace_id: str
    step_index: int
    value: float | None
    scores: dict[str, VerifierScore | ScoreError]
    error: ScoreError | None


def _step_to_wire(message: StepMessage) -> pb.ScoreStepsRequest:
    if isinstance(message, OpenTrace):
        open_msg = pb.TraceOpen(
            trace_id=message.trace_id,
            prompt=message.prompt,
            verifiers=list(message.verifiers),
            principle_weights=dict(message.principle_weights),
            metadata=convert.metadata_to_wire(message.metadata),
            task_label=message.task_label,
        )
        if message.reference is not None:
            open_msg.reference = message.reference
        return pb.ScoreStepsRequest(open=open_msg)
    if isinstance(message, AppendStep):
        step = pb.StepAppend(
            trace_id=message.trace_id,
            step_index=message.step_index,
            text=message.text,
            is_final=message.is_final,
        )
        return pb.ScoreStepsRequest(step=step)
    if isinstance(message, CloseTrace):
        return pb.ScoreStepsRequest(close=pb.TraceClose(trace_id=message.trace_id))
    raise TypeError(f"score_steps takes OpenTrace, AppendStep or CloseTrace messages, got {type(message)}")


def _step_from_wire(reply: pb.ScoreStepsResponse) -> StepResult:
    ok = reply.status.code == pb.RESULT_CODE_OK
    return StepResult(
        trace_id=reply.trace_id,
        step_index=reply.step_index,
        value=reply.value if ok else None,
        scores={r.verifier: convert.result_from_wire(r) for r in reply.results},
        error=None if ok else convert.error_from_wire(reply.status),
    )


def _rpc_error(exc: grpc.RpcError, what: str, address: str) -> RpcError:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    name = code.name if code is not None else "UNKNOWN"
    return RpcError(f"{what} on the reward server at {address} failed with {name}: {details}")


class RewardClient:
    """A connection to one reward server. ``timeout`` is the default deadline of Score/ListVerifiers calls."""

    def __init__(
        self,
        address: str,
        tls: ClientTls | None = None,
        timeout: float = 30.0,
        *,
        retries: int = 3,
        max_message_bytes: int | None = None,
    ) -> None:
        self.address, self.timeout = address, timeout
        kwargs: dict[str, Any] = {} if max_message_bytes is None else {"max_message_bytes": max_message_bytes}
        self.channel = connect(address, tls=tls, default_timeout=timeout, retries=retries, **kwargs)
        self.stub = pb_grpc.VerifierServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> RewardClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def health(self) -> str:
        """SERVING, NOT_SERVING or SERVICE_UNKNOWN for the verifier service."""
        return check_health(self.channel, SERVICE)

    def list_verifiers(self) -> list[VerifierDescription]:
        try:
            reply = self.stub.ListVerifiers(pb.ListVerifiersRequest(), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise _rpc_error(exc, "ListVerifiers", self.address) from exc
        return [
            VerifierDescription(
                v.name,
                v.principle,
                tuple(v.labels),
                dict(v.label_scores),
                v.requires_reference,
                v.supports_steps,
                v.ready,
                v.source,
                v.description,
            )
            for v in reply.verifiers
        ]

    def score(
        self,
        items: Sequence[VerifierItem],
        verifiers: Sequence[str] = (),
        *,
        timeout: float | None = None,
        request_id: str = "",
    ) -> list[ItemScores]:
        """One :class:`ItemScores` per item, in order. Empty ``verifiers``: each item's task-label recipe
        (``metadata["task_label"]``). An item's ``metadata["item_id"]`` is sent as its id."""
        request = pb.ScoreRequest(
            items=[convert.item_to_wire(item) for item in items],
            verifiers=list(verifiers),
            request_id=request_id,
        )
        try:
            reply = self.stub.Score(request, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            raise _rpc_error(exc, f"Score ({len(items)} items)", self.address) from exc
        if len(reply.items) != len(items):
            raise RpcError(
                f"the reward server at {self.address} answered {len(reply.items)} results for "
                f"{len(items)} items; it breaks the protocol — upgrade or fix the server"
            )
        out = []
        for result in sorted(reply.items, key=lambda r: r.index):
            ok = result.status.code == pb.RESULT_CODE_OK
            reward = convert.breakdown_from_wire(result.reward) if result.HasField("reward") else None
            scores = ItemScores(
                result.item_id, None if ok else convert.error_from_wire(result.status), reward
            )
            for verifier_result in result.results:
                scores[verifier_result.verifier] = convert.result_from_wire(verifier_result)
            out.append(scores)
        return out

    def rewards(
        self, items: Sequence[VerifierItem], *, timeout: float | None = None, request_id: str = ""
    ) -> list[RewardBreakdown]:
        """The server's recipe reward of each item (task label from ``metadata["task_label"]``), in order.

        A failed item has ``total`` None and ``error`` set; a server too old to compose rewards is an
        :class:`RpcError` (no reward is ever guessed from the raw scores)."""
        out = []
        for index, scores in enumerate(self.score(items, timeout=timeout, request_id=request_id)):
            if scores.reward is None:
                raise RpcError(
                    f"the reward server at {self.address} sent no reward for item {index}: it predates "
                    "ItemResult.reward; upgrade the server, or score named verifiers with score()"
                )
            out.append(scores.reward)
        return out

    def score_steps(
        self, messages: Iterable[StepMessage], *, timeout: float | None = None
    ) -> Iterator[StepResult]:
        """Stream trace messages; yield one :class:`StepResult` per :class:`AppendStep`, in order.

        For interactive search (send a step, read its score, decide the next one) use :meth:`steps`.
        """
        replies = self.stub.ScoreSteps((_step_to_wire(m) for m in messages), timeout=timeout)
        try:
            for reply in replies:
                yield _step_from_wire(reply)
        except grpc.RpcError as exc:
            raise _rpc_error(exc, "ScoreSteps", self.address) from exc

    def steps(self, *, timeout: float | None = None) -> StepSession:
        """An interactive step-scoring session on one stream (use as a context manager)."""
        return StepSession(self, timeout)


class StepSession:
    """Request/response over one ScoreSteps stream: ``append`` returns the score of the step just sent."""

    _END = object()

    def __init__(self, client: RewardClient, timeout: float | None) -> None:
        self._outbox: queue.Queue[object] = queue.Queue()
        self._replies = client.score_steps(self._feed(), timeout=timeout)
        self._lock = threading.Lock()
        self._next: dict[str, int] = {}

    def _feed(self) -> Iterator[StepMessage]:
        while (message := self._outbox.get()) is not self._END:
            assert isinstance(message, OpenTrace | AppendStep | CloseTrace)
            yield message

    def open(self, trace_id: str, prompt: str, **options: Any) -> None:
        """Open a trace (options as in :class:`OpenTrace`); an error shows up on the next ``append``."""
        self._outbox.put(OpenTrace(trace_id, prompt, **options))
        self._next[trace_id] = 0

    def append(self, trace_id: str, text: str, *, is_final: bool = False) -> StepResult:
        with self._lock:
            index = self._next.get(trace_id, 0)
            self._outbox.put(AppendStep(trace_id, index, text, is_final))
            self._next[trace_id] = index + 1
            return next(self._replies)

    def close_trace(self, trace_id: str) -> None:
        self._outbox.put(CloseTrace(trace_id))
        self._next.pop(trace_id, None)

    def close(self) -> None:
        self._outbox.put(self._END)
        for _ in self._replies:  # drain: errors for closes of unknown traces, if any
            pass

    def __enter__(self) -> StepSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
