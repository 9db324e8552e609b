"""The TTP's durable store: the records it keeps and the one interface every backend implements.

The seed → identity mapping is the heart of attribution: a seed that maps to two identities, or a grant lost
after it was handed to a vendor, would make the TTP's answer worthless. So records validate themselves when
built (bad input fails before it reaches a database), seeds are unique across all grants, every write is
durable when it returns, and the audit log is hash-chained (see :mod:`safework.watermark.ttp.audit`).
Backends: :class:`~safework.watermark.ttp.sqlite_store.SQLiteStore` (embedded default) and
:class:`~safework.watermark.ttp.postgres_store.PostgresStore` (several TTP instances, one database); both
pass the same conformance suite.
"""

from __future__ import annotations

import math
import re
import struct
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from safework.core.errors import ConfigError, SafeworkError

SEED_MAX = (1 << 64) - 1
ED25519_PUBLIC_KEY_BYTES = 32
MAX_DISPLAY_NAME = 200
MAX_KEYS = 16
MAX_MODEL_IDS = 256
MAX_SIGNATURE_BYTES = 1024
MAX_NONCE_BYTES = 256
MAX_AUDIT_PAGE = 10_000

_VENDOR_ID = re.compile(r"[a-z0-9-]{1,64}")
_TOKEN = re.compile(r"[A-Za-z0-9._:@+/-]+")  # ids: no whitespace, no control characters, no quoting trouble
_HEX64 = re.compile(r"[0-9a-f]{64}")
_IDENTITY_TAG = b"safework.credid.identity.v1"


class StoreError(SafeworkError):
    """The TTP store could not do what was asked (unreadable database, closed store, backend failure)."""


class StoreInputError(StoreError, ConfigError):
    """A record or argument handed to the store is invalid; nothing was written (exit code 2, as for any
    bad input)."""


class StoreConflict(StoreError):
    """A write would break a uniqueness rule (grant id or seed already issued); nothing was written."""


class UnknownVendorError(StoreError):
    """A grant names a vendor that is not registered; register it with add_vendor first."""


class StoreSchemaError(StoreError):
    """The database is not a safework TTP database, or was written by a newer safework."""


def _fail(message: str) -> StoreInputError:
    return StoreInputError(message)


def check_text(name: str, value: object, *, max_len: int, min_len: int = 1, token: bool = False) -> str:
    """A str of bounded length, encodable as UTF-8, without control characters (PostgreSQL rejects NUL)."""
    if not isinstance(value, str):
        raise _fail(f"{name} must be a str, got {type(value).__name__}")
    if not min_len <= len(value) <= max_len:
        raise _fail(f"{name} must be {min_len}..{max_len} characters, got {len(value)}: {value[:40]!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise _fail(f"{name} {value[:40]!r} contains control characters; remove them")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail(f"{name} {value[:40]!r} is not valid Unicode (unpaired surrogate)") from None
    if token and value and not _TOKEN.fullmatch(value):
        raise _fail(f"{name} {value!r} may only hold letters, digits and . _ : @ + / -")
    return value


def check_vendor_id(value: object) -> str:
    if not isinstance(value, str) or not _VENDOR_ID.fullmatch(value):
        raise _fail(
            f"vendor_id {value!r} is invalid: use 1..64 lower-case letters, digits or '-' (e.g. 'acme-ai')"
        )
    return value


def check_time(name: str, value: object) -> float:
    """Unix seconds as a finite, non-negative float (ints are accepted and converted)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"{name} must be unix seconds (a number), got {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out) or out < 0:
        raise _fail(f"{name} must be finite and >= 0 unix seconds, got {value!r}")
    return out


def check_seed(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEED_MAX:
        raise _fail(f"seed must be an int in 0..2**64-1 (64-bit unsigned), got {value!r}")
    return value


def check_bytes(name: str, value: object, *, min_len: int, max_len: int) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise _fail(f"{name} must be bytes, got {type(value).__name__}")
    out = bytes(value)
    if not min_len <= len(out) <= max_len:
        raise _fail(f"{name} must be {min_len}..{max_len} bytes, got {len(out)}")
    return out


def _check_endpoint(value: object) -> str:
    text = check_text("endpoint", value, max_len=300)
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # [IPv6]:port
    if not sep or not host or " " in host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise _fail(
            f"endpoint {text!r} must be host:port with a port in 1..65535, e.g. 'vendor.example:8443'"
        )
    return text


@dataclass(frozen=True)
class VendorRecord:
    """A registered vendor. Lists given as lists are stored as tuples, so records compare by value."""

    vendor_id: str
    display_name: str
    public_keys: tuple[tuple[str, bytes], ...]
    model_ids: tuple[str, ...]
    scheme: str
    scheme_version: str
    endpoint: str
    cert_fingerprint: str
    registered_at: float

    def __post_init__(self) -> None:
        check_vendor_id(self.vendor_id)
        check_text("display_name", self.display_name, max_len=MAX_DISPLAY_NAME)
        if not isinstance(self.public_keys, tuple | list) or len(self.public_keys) > MAX_KEYS:
            raise _fail(f"public_keys must be a sequence of at most {MAX_KEYS} (key_id, key) pairs")
        keys: list[tuple[str, bytes]] = []
        for pair in self.public_keys:
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise _fail(f"each public key is a (key_id, raw 32-byte Ed25519 key) pair, got {pair!r}")
            key_id = check_text("key_id", pair[0], max_len=64, token=True)
            raw = check_bytes(
                f"public key {key_id!r}",
                pair[1],
                min_len=ED25519_PUBLIC_KEY_BYTES,
                max_len=ED25519_PUBLIC_KEY_BYTES,
            )
            keys.append((key_id, raw))
        if len({k for k, _ in keys}) != len(keys):
            raise _fail("public_keys repeats a key_id; give each key its own id")
        if not isinstance(self.model_ids, tuple | list) or len(self.model_ids) > MAX_MODEL_IDS:
            raise _fail(f"model_ids must be a sequence of at most {MAX_MODEL_IDS} model ids")
        models = tuple(check_text("model_id", m, max_len=128, token=True) for m in self.model_ids)
        if len(set(models)) != len(models):
            raise _fail("model_ids repeats a model id; list each model once")
        check_text("scheme", self.scheme, max_len=64, token=True)
        check_text("scheme_version", self.scheme_version, max_len=64, min_len=0, token=True)
        _check_endpoint(self.endpoint)
        if not isinstance(self.cert_fingerprint, str) or (
            self.cert_fingerprint and not _HEX64.fullmatch(self.cert_fingerprint)
        ):
            raise _fail(
                "cert_fingerprint must be '' or the lower-case hex SHA-256 of the vendor's client "
                f"certificate (64 hex digits), got {self.cert_fingerprint!r}"
            )
        object.__setattr__(self, "public_keys", tuple(keys))
        object.__setattr__(self, "model_ids", models)
        object.__setattr__(self, "registered_at", check_time("registered_at", self.registered_at))


@dataclass(frozen=True)
class IdentityMessage:
    """The CredID message m a seed is bound to: who, which model and version, and when. Never user data."""

    vendor_id: str
    model_id: str
    model_version: str
    time_bucket: int
    extra_info: str = ""

    def __post_init__(self) -> None:
        check_vendor_id(self.vendor_id)
        check_text("model_id", self.model_id, max_len=128, token=True)
        check_text("model_version", self.model_version, max_len=64)
        if isinstance(self.time_bucket, bool) or not isinstance(self.time_bucket, int):
            raise _fail(f"time_bucket must be an int, got {type(self.time_bucket).__name__}")
        if not 0 <= self.time_bucket < 1 << 63:
            raise _fail(f"time_bucket must be in 0..2**63-1, got {self.time_bucket}")
        check_text("extra_info", self.extra_info, max_len=256, min_len=0)

    def canonical_bytes(self) -> bytes:
        """Deterministic, unambiguous bytes for hashing and signing: a domain tag, then each field
        length-prefixed (4-byte big-endian) as UTF-8, the time bucket as 8 bytes big-endian."""
        out = bytearray()
        for raw in (
            _IDENTITY_TAG,
            *(s.encode() for s in (self.vendor_id, self.model_id, self.model_version)),
        ):
            out += struct.pack(">I", len(raw)) + raw
        out += struct.pack(">Q", self.time_bucket)
        extra = self.extra_info.encode()
        out += struct.pack(">I", len(extra)) + extra
        return bytes(out)


@dataclass(frozen=True)
class GrantRecord:
    """A seed issued to one vendor and bound to one identity; the signature is opaque to the store."""

    grant_id: str
    identity: IdentityMessage
    seed: int
    issued_at: float
    signature: bytes

    def __post_init__(self) -> None:
        check_text("grant_id", self.grant_id, max_len=128, token=True)
        if not isinstance(self.identity, IdentityMessage):
            raise _fail(f"identity must be an IdentityMessage, got {type(self.identity).__name__}")
        check_seed(self.seed)
        object.__setattr__(self, "issued_at", check_time("issued_at", self.issued_at))
        sig = check_bytes("signature", self.signature, min_len=0, max_len=MAX_SIGNATURE_BYTES)
        object.__setattr__(self, "signature", sig)

    @property
    def vendor_id(self) -> str:
        return self.identity.vendor_id


@dataclass(frozen=True)
class AuditEntry:
    """One hash-chained audit log entry; built by the store, checked by ``audit.verify_chain``.

    Read back from a damaged database, an entry is still returned (so a verifier can name it) even if its
    fields no longer hash correctly; validation is the chain check's job, not the constructor's.
    """

    index: int
    timestamp: float
    kind: str
    payload: dict[str, Any] = field(hash=False)  # entry_hash already covers it; dicts are unhashable
    prev_hash: str
    entry_hash: str


class TTPStore(ABC):
    """Everything the TTP must not lose. Thread-safe; each write is durable (committed) when it returns."""

    @abstractmethod
    def add_vendor(self, record: VendorRecord) -> None:
        """Register a vendor, or replace a registration (keys, models, scheme, endpoint, fingerprint, name).

        Re-registration keeps the first ``registered_at``: it records when the vendor first joined.
        """

    @abstractmethod
    def get_vendor(self, vendor_id: str) -> VendorRecord | None: ...

    @abstractmethod
    def list_vendors(self) -> list[VendorRecord]:
        """Every vendor, ordered by vendor_id."""

    @abstractmethod
    def add_grant(self, record: GrantRecord) -> None:
        """Record a grant. Raises StoreConflict if its grant_id or its seed was already issued, and
        UnknownVendorError if its vendor is not registered."""

    @abstractmethod
    def get_grant(self, grant_id: str) -> GrantRecord | None: ...

    @abstractmethod
    def grant_for_seed(self, seed: int) -> GrantRecord | None: ...

    @abstractmethod
    def grants_for_vendor(self, vendor_id: str, *, since: float | None = None) -> list[GrantRecord]:
        """A vendor's grants issued at or after ``since`` (all if None), oldest first: the candidate seeds
        the TTP sends to that vendor, and only to it, at attribution."""

    @abstractmethod
    def count_grants(self) -> int: ...

    @abstractmethod
    def remember_nonce(self, client_id: str, nonce: bytes, timestamp: float) -> bool:
        """True if (client_id, nonce) is new and now recorded; False if it was seen before (a replay)."""

    @abstractmethod
    def purge_nonces(self, older_than: float) -> int:
        """Forget nonces recorded before ``older_than``; returns how many. Callers must reject requests
        whose timestamp is older than the purge horizon, or a purged nonce could be replayed."""

    @abstractmethod
    def append_audit(
        self, kind: str, payload: dict[str, Any], *, timestamp: float | None = None
    ) -> AuditEntry:
        """Append to the hash chain (serialised across threads, processes and TTP instances)."""

    @abstractmethod
    def read_audit(self, start: int = 0, limit: int = 100) -> list[AuditEntry]:
        """Entries with index >= start, oldest first, at most ``limit`` (1..MAX_AUDIT_PAGE)."""

    @abstractmethod
    def audit_length(self) -> int: ...

    @abstractmethod
    def close(self) -> None:
        """Release the database; later calls raise StoreError. Closing twice is harmless."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_page(start: object, limit: object) -> tuple[int, int]:
    """Validate read_audit's paging arguments."""
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise _fail(f"start must be an int >= 0, got {start!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_AUDIT_PAGE:
        raise _fail(f"limit must be an int in 1..{MAX_AUDIT_PAGE}, got {limit!r}; page through longer logs")
    return start, limit


def check_nonce(client_id: object, nonce: object, timestamp: object) -> tuple[str, bytes, float]:
    """Validate remember_nonce's arguments."""
    return (
        check_text("client_id", client_id, max_len=256),
        check_bytes("nonce", nonce, min_len=1, max_len=MAX_NONCE_BYTES),
        check_time("timestamp", timestamp),
    )
