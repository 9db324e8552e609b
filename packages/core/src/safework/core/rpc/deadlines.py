"""Deadline policy for safework servers, and servicer-side helpers that honour it.

Policy (one interceptor, applied to every service except health and reflection):

- ``require_deadline=True``: a call whose client set no deadline is rejected with INVALID_ARGUMENT before
  the servicer runs. Verifier and watermark calls can run for minutes; a client without a deadline holds a
  worker forever when it goes away, so production servers should require one.
- ``max_timeout_s``: the server's own budget per call. A client may ask for a longer deadline, but the
  servicer sees ``min(client deadline, max_timeout_s)`` through :func:`remaining` / :func:`check_deadline`,
  and a unary or streamed response finished after the budget is replaced by DEADLINE_EXCEEDED.
- ``default_timeout_s``: the budget for calls without a client deadline when they are not rejected.

gRPC cannot shorten a deadline the client set, so the cap is enforced cooperatively inside handlers (the
helpers below) and at the end of each handler (the interceptor), never by killing a thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import grpc

from safework.core.errors import ConfigError

T = TypeVar("T")

# gRPC reports "no deadline" as a deadline far in the future; anything beyond this counts as none.
_NO_DEADLINE_S = 1e8
_EXEMPT_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

_budgets: dict[int, float] = {}  # id(servicer context) -> time.monotonic() at which the server budget ends
_budgets_lock = threading.Lock()


@dataclass(frozen=True)
class DeadlinePolicy:
    """How a server treats client deadlines (see the module docstring)."""

    require_deadline: bool = False
    max_timeout_s: float | None = None
    default_timeout_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_timeout_s", "default_timeout_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"DeadlinePolicy.{name} must be positive seconds or None, got {value!r}.")

    def budget_s(self, client_remaining: float | None) -> float | None:
        """Seconds the server gives a call, or None when only the client's deadline (if any) applies."""
        limits = [v for v in (self.max_timeout_s,) if v is not None]
        if client_remaining is None and self.default_timeout_s is not None:
            limits.append(self.default_timeout_s)
        return min(limits) if limits else None


def client_remaining(context: grpc.ServicerContext) -> float | None:
    """Seconds until the client's deadline, or None when the client set none."""
    left = context.time_remaining()
    return None if left is None or left > _NO_DEADLINE_S else float(left)


def remaining(context: grpc.ServicerContext) -> float | None:
    """Seconds this call may still use: the tighter of the client's deadline and the server's budget."""
    left = client_remaining(context)
    with _budgets_lock:
        end = _budgets.get(id(context))
    if end is not None:
        budget_left = max(end - time.monotonic(), 0.0)
        left = budget_left if left is None else min(left, budget_left)
    return left


def abort_deadline(context: grpc.ServicerContext, doing: str = "the call") -> NoReturn:
    """End the call with DEADLINE_EXCEEDED, saying what was cut short."""
    context.abort(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        f"deadline exceeded while {doing}; retry with a longer timeout or a smaller request.",
    )
    raise AssertionError("context.abort returned")  # pragma: no cover - abort always raises


def check_deadline(context: grpc.ServicerContext, doing: str = "the call") -> None:
    """Abort (DEADLINE_EXCEEDED, or CANCELLED if the client left) when the call should stop; call it often."""
    left = remaining(context)
    if left is not None and left <= 0:
        abort_deadline(context, doing)
    if not context.is_active():  # the client cancelled or went away: stop working for nobody
        context.abort(grpc.StatusCode.CANCELLED, f"the call was cancelled while {doing}.")


def wait_with_deadline(future: Future[T], context: grpc.ServicerContext, doing: str = "waiting") -> T:
    """Wait for work done elsewhere (a batcher, a worker pool) but never past the call's deadline."""
    try:
        return future.result(timeout=remaining(context))
    except FutureTimeout:
        future.cancel()
        abort_deadline(context, doing)


class DeadlineInterceptor(grpc.ServerInterceptor):
    """Applies a :class:`DeadlinePolicy` to every method except health checks and reflection."""

    def __init__(self, policy: DeadlinePolicy) -> None:
        self.policy = policy

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(_EXEMPT_PREFIXES):
            return handler
        return _wrap_handler(handler, self.policy, method)


def _admit(policy: DeadlinePolicy, context: grpc.ServicerContext, method: str) -> float | None:
    """Reject a deadline-less call if required; return the monotonic end of the server budget, if any."""
    client = client_remaining(context)
    if client is None and policy.require_deadline:
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{method} requires a deadline: set timeout= on the call "
            "(safework.core.rpc.client.connect(default_timeout=...) does it for every call).",
        )
    budget = policy.budget_s(client)
    return None if budget is None else time.monotonic() + budget


class _Budget:
    """Registers a call's server budget for :func:`remaining` while the handler runs."""

    def __init__(self, context: grpc.ServicerContext, end: float | None) -> None:
        self.key, self.end = id(context), end

    def __enter__(self) -> None:
        if self.end is not None:
            with _budgets_lock:
                _budgets[self.key] = self.end

    def __exit__(self, *exc: object) -> None:
        if self.end is not None:
            with _budgets_lock:
                _budgets.pop(self.key, None)


def _over(end: float | None) -> bool:
    return end is not None and time.monotonic() > end


def _wrap_handler(
    handler: grpc.RpcMethodHandler, policy: DeadlinePolicy, method: str
) -> grpc.RpcMethodHandler:
    def unary_response(inner: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
        def behavior(request: Any, context: grpc.ServicerContext) -> Any:
            end = _admit(policy, context, method)
            with _Budget(context, end):
                response = inner(request, context)
            if _over(end):
                abort_deadline(context, f"running {method} (past the server's time budget)")
            return response

        return behavior

    def stream_response(inner: Callable[[Any, grpc.ServicerContext], Iterator[Any]]) -> Callable[..., Any]:
        def behavior(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            end = _admit(policy, context, method)
            with _Budget(context, end):
                for response in inner(request, context):
                    if _over(end):
                        abort_deadline(context, f"streaming {method} (past the server's time budget)")
                    yield response

        return behavior

    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(unary_response(handler.unary_unary), **kwargs)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(unary_response(handler.stream_unary), **kwargs)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(stream_response(handler.unary_stream), **kwargs)
    return grpc.stream_stream_rpc_method_handler(stream_response(handler.stream_stream), **kwargs)
