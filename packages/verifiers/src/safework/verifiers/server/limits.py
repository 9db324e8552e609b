"""Request limits of the reward server and the checks that turn a bad request into a clear gRPC status.

A malformed request is refused as a whole (INVALID_ARGUMENT) before anything is queued, so a client never
waits on a batch that cannot be scored; item-level problems that only one verifier cares about (a missing
reference) are reported per item instead, so the other verifiers still score the item.
"""

from __future__ import annotations

from dataclasses import dataclass

from safework.core.errors import ConfigError
from safework.core.rpc import DEFAULT_MAX_MESSAGE_BYTES
from safework.core.rpc.gen.verifier.v1 import verifier_pb2 as pb


class RequestRejected(Exception):
    """A request the server refuses as a whole; ``code`` is the gRPC status name to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class RequestLimits:
    """What one call may ask for. ``max_message_bytes`` is enforced by gRPC itself (RESOURCE_EXHAUSTED)."""

    max_items: int = 256
    max_verifiers: int = 16
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_open_traces: int = 64
    max_steps_per_trace: int = 512

    def __post_init__(self) -> None:
        for name in ("max_items", "max_verifiers", "max_open_traces", "max_steps_per_trace"):
            if getattr(self, name) < 1:
                raise ConfigError(f"RequestLimits.{name} must be at least 1, got {getattr(self, name)}.")


def check_score_request(request: pb.ScoreRequest, limits: RequestLimits) -> None:
    """Refuse an empty or oversized ScoreRequest, naming the limit and the fix."""
    count = len(request.items)
    if count == 0:
        raise RequestRejected(
            "INVALID_ARGUMENT", "ScoreRequest has no items; send at least one ScoreItem to score."
        )
    if count > limits.max_items:
        raise RequestRejected(
            "INVALID_ARGUMENT",
            f"ScoreRequest has {count} items, over this server's limit of {limits.max_items} items per "
            "request (max_items_per_request, see ListVerifiers limits); split the batch into smaller calls.",
        )
    check_verifier_names(list(request.verifiers), limits)


def check_verifier_names(names: list[str], limits: RequestLimits) -> None:
    """Refuse blank, repeated or too many verifier names (each would be scored twice or not at all)."""
    if len(names) > limits.max_verifiers:
        raise RequestRejected(
            "INVALID_ARGUMENT",
            f"the request names {len(names)} verifiers, over this server's limit of {limits.max_verifiers}; "
            "ask for fewer verifiers per call.",
        )
    seen: set[str] = set()
    for name in names:
        if not name.strip():
            raise RequestRejected(
                "INVALID_ARGUMENT", "a verifier name is empty; list names from ListVerifiers, or none."
            )
        if name in seen:
            raise RequestRejected(
                "INVALID_ARGUMENT", f"verifier {name!r} is named twice; name each verifier once."
            )
        seen.add(name)


def server_limits_message(limits: RequestLimits, max_batch: int, max_wait_ms: float) -> pb.ServerLimits:
    """The limits as reported by ListVerifiers."""
    return pb.ServerLimits(
        max_items_per_request=limits.max_items,
        max_message_bytes=limits.max_message_bytes,
        max_batch_size=max_batch,
        max_wait_ms=max_wait_ms,
    )
