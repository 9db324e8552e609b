"""The TTP's gRPC service: vendor registry, seed grants, attribution and the audit log.

Every state-changing call is authenticated twice: by the caller's mTLS certificate (who holds the
connection) and by an Ed25519 signature over the request (who said it, with a nonce and a timestamp so a
recorded request cannot be replayed). Only an admin registers vendors; a vendor asks for seeds only in
its own name. Each grant is durable in the store before it is acknowledged, and every event is appended
to the hash-chained audit log. Nothing the TTP receives at issuance carries a prompt or a generated text.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc

from safework.core.errors import ConfigError, SafeworkError
from safework.core.rpc.gen.watermark.v1 import ttp_pb2, ttp_pb2_grpc
from safework.watermark.security import signing
from safework.watermark.security.messages import (
    MAX_TEXT_CHARS,
    RETRY_AFTER_KEY,
    check_message,
    method_name,
    sign_message,
)
from safework.watermark.security.pki import PeerIdentityError, peer_identity
from safework.watermark.security.rate_limit import TokenBucketLimiter
from safework.watermark.security.signing import SignerMismatchError, SigningKey
from safework.watermark.ttp.attribution import Attributor, VendorCaller
from safework.watermark.ttp.seeds import SeedIssuer, pack_bits
from safework.watermark.ttp.store import (
    GrantRecord,
    IdentityMessage,
    StoreConflict,
    StoreInputError,
    TTPStore,
    VendorRecord,
)

log = logging.getLogger(__name__)
AUDIT_PAGE, AUDIT_PAGE_MAX = 100, 10_000


class StoreReplayGuard:
    """Nonces remembered in the durable store, so several TTP instances on one database share them."""

    def __init__(self, store: TTPStore) -> None:
        self.store = store

    def remember(self, client_id: str, nonce: bytes, timestamp: float) -> bool:
        return self.store.remember_nonce(client_id, nonce, timestamp)


@dataclass
class TtpConfig:
    """What a TTP instance needs besides its store.

    ``requesters`` are the signing keys of parties allowed to ask for attributions (admins included);
    ``admins`` those allowed to register vendors. ``require_mtls`` binds every signer to the caller's
    certificate; switch it off only for a loopback test without TLS.
    """

    key: SigningKey
    issuer: SeedIssuer
    admins: Mapping[str, Mapping[str, bytes]]
    requesters: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict)
    require_mtls: bool = True
    attribution_rate_per_s: float = 2.0
    attribution_burst: float = 10.0
    default_alpha: float = 0.01
    extract_timeout_s: float = 120.0


class _Reject(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


_SIGNATURE_CODES: dict[type[Exception], grpc.StatusCode] = {
    SignerMismatchError: grpc.StatusCode.PERMISSION_DENIED
}


@contextmanager
def _rpc_errors(context: grpc.ServicerContext) -> Iterator[None]:
    """Map our errors to gRPC statuses with the message (which names the fix) as details."""
    try:
        yield
    except _Reject as exc:
        context.abort(exc.code, str(exc))
    except signing.SignatureError as exc:
        context.abort(_SIGNATURE_CODES.get(type(exc), grpc.StatusCode.UNAUTHENTICATED), str(exc))
    except PeerIdentityError as exc:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
    except StoreConflict as exc:
        context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))
    except (StoreInputError, ConfigError, ValueError) as exc:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    except SafeworkError as exc:
        log.exception("TTP call failed")
        context.abort(grpc.StatusCode.INTERNAL, str(exc))


def _timestamp(message: Any, unix: float) -> Any:
    message.FromNanoseconds(round(unix * 1e9))
    return message


class TtpServicer(ttp_pb2_grpc.TtpServiceServicer):
    """One TTP instance; several may share one PostgreSQL store."""

    def __init__(self, store: TTPStore, config: TtpConfig, vendor_caller: VendorCaller) -> None:
        self.store, self.config = store, config
        self.guard = StoreReplayGuard(store)
        self.limiter = TokenBucketLimiter(config.attribution_rate_per_s, config.attribution_burst)
        self.attributor = Attributor(store, config.key, vendor_caller, timeout_s=config.extract_timeout_s)

    # -- authentication -------------------------------------------------------------------------------
    def _caller(self, context: grpc.ServicerContext) -> str | None:
        return peer_identity(context).name if self.config.require_mtls else None

    def _check(
        self,
        request: Any,
        method: str,
        context: grpc.ServicerContext,
        keys_of: Callable[[str], Mapping[str, bytes] | None],
        who: str,
    ) -> str:
        caller = self._caller(context)
        signer = request.signature.signer_id
        keys = keys_of(signer)
        if keys is None:
            raise _Reject(grpc.StatusCode.PERMISSION_DENIED, f"{signer!r} is not {who}; {method} is refused")
        return check_message(
            request, method_name("TtpService", method), keys, self.guard, expected_signer=caller
        )

    def _vendor_keys(self, vendor_id: str) -> Mapping[str, bytes] | None:
        record = self.store.get_vendor(vendor_id)
        return None if record is None else dict(record.public_keys)

    # -- RPCs -----------------------------------------------------------------------------------------
    def RegisterVendor(self, request: Any, context: grpc.ServicerContext) -> Any:
        with _rpc_errors(context):
            admin = self._check(request, "RegisterVendor", context, self.config.admins.get, "an admin")
            for key in request.keys:
                if key.algorithm not in ("", "ed25519"):
                    raise _Reject(grpc.StatusCode.INVALID_ARGUMENT, f"key {key.key_id!r}: only ed25519 keys")
                if signing.key_id_of(bytes(key.public_key)) != key.key_id:
                    raise _Reject(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"key_id {key.key_id!r} is not the id of its public key; use signing.key_id_of(key)",
                    )
            previous = self.store.get_vendor(request.vendor_id)
            record = VendorRecord(
                vendor_id=request.vendor_id,
                display_name=request.display_name or request.vendor_id,
                public_keys=tuple((k.key_id, bytes(k.public_key)) for k in request.keys),
                model_ids=tuple(request.model_ids),
                scheme=request.scheme or "credid",
                scheme_version=request.scheme_version or "1",
                endpoint=request.endpoint,
                cert_fingerprint=request.cert_fingerprint,
                registered_at=previous.registered_at if previous else time.time(),
            )
            if not record.public_keys:
                raise _Reject(grpc.StatusCode.INVALID_ARGUMENT, "register at least one ed25519 key")
            self.store.add_vendor(record)
            entry = self.store.append_audit(
                "vendor_registered",
                {"actor": admin, "vendor_id": record.vendor_id, "keys": [k for k, _ in record.public_keys]},
            )
            return ttp_pb2.RegisterVendorResponse(
                vendor=vendor_message(record),
                ttp_public_key=self.config.key.public_bytes(),
                audit_sequence=entry.index,
            )

    def IssueSeed(self, request: Any, context: grpc.ServicerContext) -> Any:
        with _rpc_errors(context):
            if request.signature.signer_id != request.vendor_id:
                raise SignerMismatchError(
                    f"a seed for {request.vendor_id!r} must be signed by {request.vendor_id!r}, not "
                    f"{request.signature.signer_id!r}; a vendor cannot act for another"
                )
            self._check(request, "IssueSeed", context, self._vendor_keys, "a registered vendor")
            vendor = self.store.get_vendor(request.vendor_id)
            assert vendor is not None  # _check found its keys
            wanted = request.identity
            if wanted.vendor_id not in ("", request.vendor_id):
                raise SignerMismatchError("identity.vendor_id must be the requesting vendor")
            if wanted.model_id not in vendor.model_ids:
                raise _Reject(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"model {wanted.model_id!r} is not registered for {vendor.vendor_id!r} "
                    f"(registered: {', '.join(vendor.model_ids)}); ask the admin to register it",
                )
            when = wanted.timestamp.ToNanoseconds() / 1e9 if wanted.HasField("timestamp") else time.time()
            identity = IdentityMessage(
                vendor.vendor_id,
                wanted.model_id,
                wanted.model_version,
                self.config.issuer.bucket(when),
                wanted.extra_info,
            )
            return self._grant(identity)

    def _grant(self, identity: IdentityMessage) -> Any:
        issuer = self.config.issuer
        seed = issuer.seed(identity)
        existing = self.store.grant_for_seed(seed)
        if existing is not None:  # the same identity in the same period: the cached grant
            return grant_message(existing, issuer, audit_sequence=0)
        record = GrantRecord(issuer.grant_id(seed), identity, seed, time.time(), b"")
        unsigned = grant_message(record, issuer, audit_sequence=0)
        signature = self.config.key.sign(unsigned.SerializeToString(deterministic=True))
        record = GrantRecord(record.grant_id, identity, seed, record.issued_at, signature)
        try:
            self.store.add_grant(record)  # durable before it is acknowledged
        except StoreConflict:
            existing = self.store.grant_for_seed(seed)  # another instance issued it a moment ago
            if existing is None:
                raise
            return grant_message(existing, issuer, audit_sequence=0)
        entry = self.store.append_audit(
            "seed_issued",
            {
                "actor": identity.vendor_id,
                "grant_id": record.grant_id,
                "model_id": identity.model_id,
                "model_version": identity.model_version,
                "time_bucket": identity.time_bucket,
            },
        )
        return grant_message(record, issuer, audit_sequence=entry.index)

    def Attribute(self, request: Any, context: grpc.ServicerContext) -> Any:
        with _rpc_errors(context):
            requesters = {**self.config.requesters, **self.config.admins}
            client = self._check(request, "Attribute", context, requesters.get, "a known requester")
            if not self.limiter.allow(client):
                wait_s = self.limiter.retry_after(client)
                context.set_trailing_metadata(((RETRY_AFTER_KEY, str(math.ceil(wait_s * 1000))),))
                raise _Reject(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"too many attributions from {client!r}; retry in {wait_s:.1f} s",
                )
            text = request.text
            if not text.strip():
                raise _Reject(grpc.StatusCode.INVALID_ARGUMENT, "text is empty; pass the suspect text")
            if len(text) > MAX_TEXT_CHARS:
                raise _Reject(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"text has {len(text)} characters, more than {MAX_TEXT_CHARS}; split it",
                )
            alpha = request.alpha or self.config.default_alpha
            if not 0 < alpha < 1:
                raise _Reject(grpc.StatusCode.INVALID_ARGUMENT, f"alpha must be in (0, 1), got {alpha}")
            response = self.attributor.attribute(
                text, alpha, list(request.vendor_ids), request.correction, request.request_id
            )
            entry = self.store.append_audit(
                "attribution",
                {
                    "actor": client,
                    "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                    "decision": ttp_pb2.Decision.Name(response.decision),
                    "vendor_id": response.vendor_id,
                    "seed_id": response.seed_id,
                    "partial": response.partial,
                },
            )
            response.audit_sequence = entry.index
            response.ttp_signature = self.config.key.sign(response.SerializeToString(deterministic=True))
            return response

    def GetAuditLog(self, request: Any, context: grpc.ServicerContext) -> Any:
        with _rpc_errors(context):
            self._caller(context)  # any authenticated party may read the log (it holds no secrets)
            limit = request.limit or AUDIT_PAGE
            if limit > AUDIT_PAGE_MAX:
                raise _Reject(grpc.StatusCode.INVALID_ARGUMENT, f"limit is at most {AUDIT_PAGE_MAX}")
            entries = self.store.read_audit(int(request.from_sequence), int(limit))
            length = self.store.audit_length()
            head = self.store.read_audit(length - 1, 1)[0] if length else None
            head_hash = bytes.fromhex(head.entry_hash) if head else b""
            head_sequence = head.index if head else 0
            return ttp_pb2.GetAuditLogResponse(
                entries=[audit_message(e) for e in entries],
                head_sequence=head_sequence,
                head_hash=head_hash,
                head_signature=self.config.key.sign(head_sequence.to_bytes(8, "big") + head_hash),
            )


# -- record → message ---------------------------------------------------------------------------------
_AUDIT_KINDS = {
    "vendor_registered": ttp_pb2.AUDIT_KIND_VENDOR_REGISTERED,
    "seed_issued": ttp_pb2.AUDIT_KIND_SEED_ISSUED,
    "attribution": ttp_pb2.AUDIT_KIND_ATTRIBUTION,
}


def vendor_message(record: VendorRecord) -> Any:
    message = ttp_pb2.Vendor(
        vendor_id=record.vendor_id,
        display_name=record.display_name,
        keys=[ttp_pb2.VendorKey(key_id=k, public_key=v, algorithm="ed25519") for k, v in record.public_keys],
        model_ids=list(record.model_ids),
        scheme=record.scheme,
        scheme_version=record.scheme_version,
        endpoint=record.endpoint,
    )
    _timestamp(message.registered_at, record.registered_at)
    return message


def identity_message(identity: IdentityMessage, issuer: SeedIssuer) -> Any:
    message = ttp_pb2.IdentityMessage(
        vendor_id=identity.vendor_id,
        model_id=identity.model_id,
        model_version=identity.model_version,
        extra_info=identity.extra_info,
        time_bucket=identity.time_bucket,
    )
    _timestamp(message.timestamp, issuer.window(identity.time_bucket)[0])
    return message


def grant_message(record: GrantRecord, issuer: SeedIssuer, *, audit_sequence: int) -> Any:
    """The SeedGrant for a stored grant; the signature covers it with audit_sequence 0."""
    start, end = issuer.window(record.identity.time_bucket)
    message = ttp_pb2.SeedGrant(
        seed_id=record.grant_id,
        seed=record.seed.to_bytes(8, "big"),
        payload=pack_bits(issuer.payload(record.seed), issuer.payload_bits),
        payload_bits=issuer.payload_bits,
        identity=identity_message(record.identity, issuer),
        ttp_signature=record.signature,
    )
    _timestamp(message.valid_from, start)
    _timestamp(message.valid_to, end)
    message.audit_sequence = audit_sequence
    return message


def audit_message(entry: Any) -> Any:
    message = ttp_pb2.AuditEntry(
        sequence=entry.index,
        kind=_AUDIT_KINDS.get(entry.kind, ttp_pb2.AUDIT_KIND_UNSPECIFIED),
        actor=str(entry.payload.get("actor", "")),
        body=_canonical(entry.payload),
        prev_hash=bytes.fromhex(entry.prev_hash),
        entry_hash=bytes.fromhex(entry.entry_hash),
        recorded_at_unix=entry.timestamp,
        kind_name=entry.kind,
    )
    _timestamp(message.recorded_at, entry.timestamp)
    return message


def _canonical(payload: Mapping[str, Any]) -> bytes:
    from safework.watermark.ttp.audit import canonical_json

    return canonical_json(payload).encode("utf-8")


def sign_as(message: Any, method: str, key: SigningKey, signer_id: str) -> Any:
    """Sign a TtpService request (clients, vendors and admins use this)."""
    return sign_message(message, method_name("TtpService", method), key, signer_id)
