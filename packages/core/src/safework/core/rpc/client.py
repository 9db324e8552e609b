"""Open a channel to a safework service with the settings every caller should have.

A channel from :func:`connect` retries UNAVAILABLE (server restarting, connection dropped) with exponential
backoff through gRPC's own retry machinery, puts a default deadline on calls that set none, and matches the
server's message-size limit. :func:`wait_ready` and :func:`check_health` turn "cannot reach it" into a clear
error instead of a hang.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from safework.core.errors import ConfigError, RpcError
from safework.core.rpc.address import parse_address
from safework.core.rpc.server import DEFAULT_MAX_MESSAGE_BYTES
from safework.core.rpc.tls import ClientTls

MAX_RETRIES = 4  # gRPC caps attempts at 5 (1 + 4 retries) and silently ignores anything higher


def retry_service_config(
    retries: int,
    *,
    initial_backoff_s: float = 0.1,
    max_backoff_s: float = 2.0,
    backoff_multiplier: float = 2.0,
    retryable_codes: Sequence[str] = ("UNAVAILABLE",),
) -> str:
    """The gRPC service-config JSON giving every method a retry policy (empty config when retries=0)."""
    if not 0 <= retries <= MAX_RETRIES:
        raise ConfigError(
            f"retries must be in 0..{MAX_RETRIES} (gRPC allows 5 attempts in all), got {retries}."
        )
    if retries == 0:
        return json.dumps({"methodConfig": []})
    if not (0 < initial_backoff_s <= max_backoff_s and backoff_multiplier >= 1):
        raise ConfigError(
            "retry backoff needs 0 < initial_backoff_s <= max_backoff_s and backoff_multiplier >= 1; "
            f"got {initial_backoff_s}, {max_backoff_s}, {backoff_multiplier}."
        )
    policy = {
        "maxAttempts": retries + 1,
        "initialBackoff": f"{initial_backoff_s:g}s",
        "maxBackoff": f"{max_backoff_s:g}s",
        "backoffMultiplier": backoff_multiplier,
        "retryableStatusCodes": list(retryable_codes),
    }
    return json.dumps({"methodConfig": [{"name": [{}], "retryPolicy": policy}]}, sort_keys=True)


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


class _DefaultTimeout(
    grpc.UnaryUnaryClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Give a call without ``timeout=`` the channel's default deadline (unary / streamed apart)."""

    def __init__(self, unary_s: float | None, stream_s: float | None) -> None:
        self.unary_s, self.stream_s = unary_s, stream_s

    def _details(self, details: grpc.ClientCallDetails, default: float | None) -> grpc.ClientCallDetails:
        if details.timeout is not None or default is None:
            return details
        return _CallDetails(
            details.method,
            default,
            details.metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details, self.unary_s), request)

    def intercept_stream_unary(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return continuation(self._details(details, self.unary_s), requests)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details, self.stream_s), request)

    def intercept_stream_stream(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return continuation(self._details(details, self.stream_s), requests)


def connect(
    address: str,
    *,
    tls: ClientTls | None = None,
    default_timeout: float | None = 30.0,
    default_stream_timeout: float | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    retries: int = 3,
    initial_backoff_s: float = 0.1,
    max_backoff_s: float = 2.0,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """A channel to ``host:port`` with retries on UNAVAILABLE and default deadlines.

    ``default_timeout`` applies to calls with a single response; ``default_stream_timeout`` to calls with a
    streamed response (long-lived, e.g. ScoreSteps), which have none unless set. An explicit ``timeout=`` on
    a call always wins. Close the channel (``channel.close()`` or ``with``) when done.
    """
    target = str(parse_address(address))
    for name, value in (
        ("default_timeout", default_timeout),
        ("default_stream_timeout", default_stream_timeout),
    ):
        if value is not None and not value > 0:
            raise ConfigError(f"{name} must be positive seconds or None, got {value!r}.")
    channel_options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.enable_retries", 1 if retries else 0),
        (
            "grpc.service_config",
            retry_service_config(retries, initial_backoff_s=initial_backoff_s, max_backoff_s=max_backoff_s),
        ),
    ]
    if tls is not None and tls.server_name:
        channel_options.append(("grpc.ssl_target_name_override", tls.server_name))
    channel_options.extend(options)
    if tls is None:
        channel = grpc.insecure_channel(target, options=channel_options)
    else:
        channel = grpc.secure_channel(target, tls.credentials(), options=channel_options)
    if default_timeout is None and default_stream_timeout is None:
        return channel
    return grpc.intercept_channel(channel, _DefaultTimeout(default_timeout, default_stream_timeout))


def wait_ready(channel: grpc.Channel, timeout: float = 10.0, *, address: str = "the server") -> None:
    """Block until the channel is connected; raise :class:`RpcError` after ``timeout`` seconds."""
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        raise RpcError(
            f"could not connect to {address} within {timeout:g}s; check that the server is running, the "
            "address and port are right, and both sides agree on TLS (certificates, CA, server name)."
        ) from None


def check_health(channel: grpc.Channel, service: str = "", *, timeout: float = 5.0) -> str:
    """The health status of ``service`` ("" = the whole server): SERVING, NOT_SERVING or SERVICE_UNKNOWN."""
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    except grpc.RpcError as exc:
        code = exc.code()
        if code == grpc.StatusCode.NOT_FOUND:
            return "SERVICE_UNKNOWN"
        raise RpcError(
            f"health check failed with {code.name}: {exc.details()}; check that the server is running and "
            "reachable, and that it was built with health=True."
        ) from exc
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
