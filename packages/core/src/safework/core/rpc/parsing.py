"""Answer a request that does not parse with INVALID_ARGUMENT and a message, not INTERNAL.

gRPC parses a request before the servicer sees it; when that fails (invalid UTF-8 in a string field, a
truncated message) the client gets INTERNAL "Exception deserializing request!", which reads like a server
bug. This interceptor parses inside the call instead, so the client learns what was wrong with its bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError


class StrictParsing(grpc.ServerInterceptor):
    """Unary-request methods parse their request in the call and reject bad bytes as INVALID_ARGUMENT."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler
        parse = handler.request_deserializer
        method: str = handler_call_details.method
        behaviour = handler.unary_unary or handler.unary_stream
        kind = "unary_unary" if handler.unary_unary else "unary_stream"

        def call(raw: bytes, context: grpc.ServicerContext) -> Any:
            try:
                request = parse(raw)
            except (DecodeError, UnicodeDecodeError, ValueError) as exc:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"the {method} request is not a valid message ({exc}); string fields must be UTF-8 "
                    "and the bytes must come from the published .proto",
                )
            return behaviour(request, context)

        return handler._replace(request_deserializer=None, **{kind: call})
