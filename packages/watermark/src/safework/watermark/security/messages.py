"""Signing and checking protocol messages that carry a ``RequestSignature`` field named ``signature``.

The envelope rules live in :mod:`signing`; this is the glue between them and the generated messages, so the
TTP, the vendors and the clients sign and check requests in exactly one way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from safework.watermark.security.replay import ReplayGuard
from safework.watermark.security.signing import (
    SignedHeader,
    SigningKey,
    check_request,
    message_body,
    sign_request,
)

SIGNATURE_FIELD = "signature"
# The TTP signs as "ttp"; vendors accept Extract only from it.
TTP_SIGNER = "ttp"
# The longest suspect text either side accepts: the TTP forwards what it admits, so one bound serves both.
MAX_TEXT_CHARS = 100_000
RETRY_AFTER_KEY = "retry-after-ms"  # trailing metadata of a rate-limited call: milliseconds to wait


def sign_message(
    message: Any, method: str, key: SigningKey, signer_id: str, *, now: float | None = None
) -> Any:
    """Fill ``message.signature`` for ``method`` (full gRPC name) and return the message."""
    header = sign_request(key, method, message_body(message, SIGNATURE_FIELD), signer_id, now=now)
    field = message.signature
    field.signer_id, field.key_id, field.nonce = header.signer_id, header.key_id, header.nonce
    field.timestamp_ms, field.signature = header.timestamp_ms, header.signature
    return message


def check_message(
    message: Any,
    method: str,
    public_keys: Mapping[str, bytes],
    guard: ReplayGuard,
    *,
    expected_signer: str | None = None,
    now: float | None = None,
) -> str:
    """Accept a signed message or raise a ``SignatureError`` subclass; returns the signer id."""
    sig = message.signature
    header = SignedHeader(
        sig.signer_id, sig.key_id, bytes(sig.nonce), int(sig.timestamp_ms), bytes(sig.signature)
    )
    body = message_body(message, SIGNATURE_FIELD)
    check_request(header, method, body, public_keys, guard, now=now, expected_signer=expected_signer)
    return str(sig.signer_id)


def method_name(service: str, method: str) -> str:
    """The full gRPC method name the envelope covers, e.g. ``/safework.watermark.v1.TtpService/IssueSeed``."""
    return f"/safework.watermark.v1.{service}/{method}"
