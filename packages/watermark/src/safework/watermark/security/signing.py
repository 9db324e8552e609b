"""Ed25519 identities and signed requests for the CredID multi-party protocol.

mTLS proves which party holds a connection; a signature proves which party said something, after the fact
and through any proxy: a vendor signs its seed requests and extraction reports, the TTP signs its grants,
and the audit log keeps the signatures. These keys are independent of the TLS certificates.

A signed request covers a canonical *envelope* (:func:`envelope_bytes`): a domain tag, the full gRPC method
name, the signer, the time, a fresh nonce and the body, each length-prefixed so no two different requests
share an envelope. The body is the request message with its signature field cleared, serialised with
``msg.SerializeToString(deterministic=True)`` (:func:`message_body` does exactly that); both sides must use
the same message definition, since deterministic serialisation is stable per schema, not across schemas.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from google.protobuf.message import Message

from safework.core.errors import ConfigError, SafeworkError
from safework.watermark.security._files import write_files
from safework.watermark.security.replay import ReplayGuard

DOMAIN_TAG = b"safework-credid-v1"
NONCE_BYTES = 16
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
KEY_ID_HEX = 16
DEFAULT_MAX_SKEW_S = 30.0


class SigningKeyFileError(ConfigError):
    """A signing-key file is missing, unreadable, not an Ed25519 key, or would be overwritten."""


class SignatureError(SafeworkError):
    """A signed request or report cannot be accepted; the subclass says why."""


class MalformedKeyError(SignatureError):
    """A public key is not 32 raw Ed25519 bytes (a registry or configuration error, not a forgery)."""


class NonceError(SignatureError):
    """The request's nonce is not 16 bytes."""


class SignerMismatchError(SignatureError):
    """The request claims a signer other than the authenticated caller."""


class TimestampError(SignatureError):
    """The request's timestamp is further from the verifier's clock than the allowed skew."""


class UnknownKeyError(SignatureError):
    """The request names a key id that is not registered for its signer."""


class BadSignatureError(SignatureError):
    """The signature does not match the envelope (tampered, or signed over different bytes)."""


class ReplayError(SignatureError):
    """The request's nonce was already used by this signer within the skew window."""


def key_id_of(public_bytes: bytes) -> str:
    """Short public identifier of a key: the first 16 hex digits of SHA-256 of its raw 32 bytes."""
    load_public_key(public_bytes)
    return hashlib.sha256(public_bytes).hexdigest()[:KEY_ID_HEX]


def load_public_key(public_bytes: bytes) -> Ed25519PublicKey:
    """A raw Ed25519 public key; use it to validate keys at registration, before they are stored."""
    if not isinstance(public_bytes, bytes | bytearray) or len(public_bytes) != PUBLIC_KEY_BYTES:
        size = (
            len(public_bytes) if isinstance(public_bytes, bytes | bytearray) else type(public_bytes).__name__
        )
        raise MalformedKeyError(
            f"an Ed25519 public key is {PUBLIC_KEY_BYTES} raw bytes, got {size}; send "
            "SigningKey.public_bytes() (or the 64-digit hex printed by `safework watermark pki keygen`)."
        )
    return Ed25519PublicKey.from_public_bytes(bytes(public_bytes))


class SigningKey:
    """An Ed25519 private key with the id other parties know it by."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self._public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: str | Path) -> SigningKey:
        """Read an unencrypted PKCS#8 PEM Ed25519 key (as written by :meth:`save`)."""
        path = Path(path)
        if not path.is_file():
            raise SigningKeyFileError(
                f"signing key file {path} does not exist; create one with "
                f"`safework watermark pki keygen --out {path}`."
            )
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SigningKeyFileError(f"signing key file {path} cannot be read ({exc.strerror}).") from exc
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise SigningKeyFileError(
                f"signing key file {path} is not an unencrypted PEM private key ({exc}); check the path, or "
                "create a key with `safework watermark pki keygen`."
            ) from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise SigningKeyFileError(
                f"signing key file {path} holds a {type(private).__name__}, not an Ed25519 key; TLS keys "
                "(*.key from `pki issue`) are not signing keys: create one with "
                "`safework watermark pki keygen`."
            )
        return cls(private)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the key as PKCS#8 PEM, readable by its owner only (0600)."""
        path = Path(path)
        pem = self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_files([(path, pem, 0o600)], overwrite=overwrite, error=SigningKeyFileError, flag="--overwrite")
        return path

    def public_bytes(self) -> bytes:
        """The raw 32-byte public key, as registered with the TTP."""
        return self._public

    @property
    def key_id(self) -> str:
        return key_id_of(self._public)

    def sign(self, data: bytes) -> bytes:
        """A 64-byte Ed25519 signature over ``data``."""
        return self._private.sign(bytes(data))

    def __repr__(self) -> str:  # never show key material
        return f"SigningKey(key_id={self.key_id!r})"


def verify(public_bytes: bytes, data: bytes, signature: bytes) -> bool:
    """True iff ``signature`` is valid for ``data`` under the key; False for any bad or malformed signature.

    Raises :class:`MalformedKeyError` when the key itself is not a valid raw Ed25519 key.
    """
    key = load_public_key(public_bytes)
    if not isinstance(signature, bytes | bytearray) or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        key.verify(bytes(signature), bytes(data))
    except InvalidSignature:
        return False
    return True


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(8, "big") + data


def envelope_bytes(method: str, body: bytes, nonce: bytes, timestamp_ms: int, signer_id: str) -> bytes:
    """The exact bytes a request signature covers: every field length-prefixed after a domain tag, so a
    signature can never be reused for another method, signer, time, nonce or body, nor outside this protocol.

    ``method`` is the full gRPC method name (``/safework.watermark.v1.TtpService/RequestSeed``).
    """
    if not isinstance(body, bytes | bytearray) or not isinstance(nonce, bytes | bytearray):
        raise TypeError("body and nonce must be bytes (body: msg.SerializeToString(deterministic=True))")
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int) or not 0 <= timestamp_ms < 2**63:
        raise ValueError(f"timestamp_ms must be a non-negative int of milliseconds, got {timestamp_ms!r}")
    return b"".join(
        (
            _field(DOMAIN_TAG),
            _field(str(method).encode("utf-8")),
            _field(str(signer_id).encode("utf-8")),
            timestamp_ms.to_bytes(8, "big"),
            _field(bytes(nonce)),
            _field(bytes(body)),
        )
    )


def message_body(message: Message, signature_field: str) -> bytes:
    """What to sign or check: ``message`` with ``signature_field`` cleared, deterministically serialised."""
    copy = type(message)()
    copy.CopyFrom(message)
    copy.ClearField(signature_field)
    return copy.SerializeToString(deterministic=True)


@dataclass(frozen=True)
class SignedHeader:
    """What travels with a signed request (the proto's signature message carries these fields)."""

    signer_id: str
    key_id: str
    nonce: bytes
    timestamp_ms: int
    signature: bytes


def _now_ms(now: float | None) -> int:
    return round((time.time() if now is None else now) * 1000)


def sign_request(
    key: SigningKey, method: str, body: bytes, signer_id: str, *, now: float | None = None
) -> SignedHeader:
    """Sign ``body`` for ``method`` as ``signer_id`` with a fresh 16-byte nonce; ``now`` is Unix seconds."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    timestamp_ms = _now_ms(now)
    signature = key.sign(envelope_bytes(method, body, nonce, timestamp_ms, signer_id))
    return SignedHeader(signer_id, key.key_id, nonce, timestamp_ms, signature)


def _check_time(timestamp_ms: int, now: float | None, max_skew_s: float) -> None:
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int):
        raise TimestampError(f"timestamp_ms must be an int of Unix milliseconds, got {timestamp_ms!r}.")
    offset_s = (_now_ms(now) - timestamp_ms) / 1000
    if offset_s > max_skew_s:
        raise TimestampError(
            f"the request was signed {offset_s:.1f} s ago, more than the allowed {max_skew_s:g} s; sign each "
            "request just before sending it, and keep the clocks in sync (NTP)."
        )
    if offset_s < -max_skew_s:
        raise TimestampError(
            f"the request is timestamped {-offset_s:.1f} s in the future, more than the allowed "
            f"{max_skew_s:g} s; fix the signer's clock (NTP)."
        )


def check_request(
    header: SignedHeader,
    method: str,
    body: bytes,
    public_keys: Mapping[str, bytes],
    replay_guard: ReplayGuard,
    *,
    now: float | None = None,
    max_skew_s: float = DEFAULT_MAX_SKEW_S,
    expected_signer: str | None = None,
) -> None:
    """Accept a signed request or raise the :class:`SignatureError` subclass that says why not.

    ``public_keys`` maps key id -> raw public key and must hold only the keys registered to
    ``header.signer_id`` (otherwise one party could sign in another's name). ``expected_signer`` binds the
    request to the mTLS caller (``peer_identity(context).name``). ``replay_guard`` must remember nonces for
    at least ``max_skew_s``. The nonce is recorded only after the signature checks out, so forged requests
    cannot fill the guard or burn a real client's nonce.
    """
    if not max_skew_s > 0:
        raise ConfigError(f"max_skew_s must be positive seconds, got {max_skew_s!r}.")
    if not isinstance(header.nonce, bytes | bytearray) or len(header.nonce) != NONCE_BYTES:
        got = (
            len(header.nonce) if isinstance(header.nonce, bytes | bytearray) else type(header.nonce).__name__
        )
        raise NonceError(
            f"the request nonce must be {NONCE_BYTES} random bytes, got {got}; sign with sign_request(), "
            "which draws a fresh nonce per request."
        )
    if expected_signer is not None and header.signer_id != expected_signer:
        raise SignerMismatchError(
            f"the request is signed as {header.signer_id!r} but the authenticated caller is "
            f"{expected_signer!r}; sign with the caller's own identity."
        )
    _check_time(header.timestamp_ms, now, max_skew_s)
    public = public_keys.get(header.key_id)
    if public is None:
        raise UnknownKeyError(
            f"key id {header.key_id!r} is not registered for {header.signer_id!r}; register the signer's "
            "public key first (RegisterVendor), or sign with a key that is registered."
        )
    envelope = envelope_bytes(method, body, header.nonce, header.timestamp_ms, header.signer_id)
    if not verify(public, envelope, header.signature):
        raise BadSignatureError(
            f"the signature from {header.signer_id!r} (key {header.key_id}) does not match this {method} "
            "request; sign the exact body sent (msg.SerializeToString(deterministic=True) with the signature "
            "field cleared) for this method, and do not change the request after signing."
        )
    if not replay_guard.remember(header.signer_id, bytes(header.nonce), header.timestamp_ms / 1000):
        raise ReplayError(
            f"the nonce of this request from {header.signer_id!r} was already used (or could not be "
            "recorded); sign every request afresh with sign_request() instead of resending a signed one."
        )
