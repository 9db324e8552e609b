"""A Python client of the CredID TTP for integrators: attribute texts, read and check the audit log, and
(for the admin) register vendors.

A party is its mTLS certificate (``safework watermark pki issue``) plus its Ed25519 signing key (``pki
keygen``); the client signs every request with a fresh nonce::

    from safework.watermark.client import Party, TtpClient

    me = Party.load("pki/", "auditor", "auditor.key")
    with TtpClient("127.0.0.1:7443", me) as ttp:
        result = ttp.attribute("some suspect text")
        print(result.decision, result.vendor_id, result.p_value)
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from safework.core.errors import ConfigError
from safework.core.rpc.gen.watermark.v1 import ttp_pb2, ttp_pb2_grpc
from safework.watermark.security.messages import RETRY_AFTER_KEY, method_name, sign_message
from safework.watermark.security.pki import client_tls
from safework.watermark.security.signing import SigningKey

DECISIONS = {
    ttp_pb2.DECISION_ATTRIBUTED: "vendor",
    ttp_pb2.DECISION_NONE: "none",
    ttp_pb2.DECISION_AMBIGUOUS: "ambiguous",
}


@dataclass(frozen=True)
class Party:
    """Who is calling: a name in a PKI folder (certificate + key) and an Ed25519 signing key."""

    pki: Path
    name: str
    key: SigningKey

    @classmethod
    def load(cls, pki: str | Path, name: str, key_path: str | Path) -> Party:
        return cls(Path(pki), name, SigningKey.load(key_path))

    def channel(self, target: str, *, timeout_s: float | None = 600.0) -> grpc.Channel:
        from safework.core.rpc.client import connect

        return connect(target, tls=client_tls(self.pki, self.name), default_timeout=timeout_s, retries=2)

    def sign(self, message: Any, service: str, method: str) -> Any:
        return sign_message(message, method_name(service, method), self.key, self.name)


@dataclass(frozen=True)
class Attribution:
    """The TTP's answer in plain Python (the signed protobuf is in ``raw``)."""

    decision: str
    vendor_id: str
    seed_id: str
    identity: dict[str, Any]
    p_value: float
    partial: bool
    missing_vendors: list[str]
    raw: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "vendor": self.vendor_id or None,
            "seed_id": self.seed_id or None,
            "identity": self.identity or None,
            "p_value": self.p_value,
            "partial": self.partial,
            "missing_vendors": self.missing_vendors,
        }


def attribution_from_message(response: Any) -> Attribution:
    identity = response.identity if response.HasField("identity") else None
    return Attribution(
        decision=DECISIONS.get(response.decision, "unknown"),
        vendor_id=response.vendor_id,
        seed_id=response.seed_id,
        identity=(
            {
                "vendor_id": identity.vendor_id,
                "model_id": identity.model_id,
                "model_version": identity.model_version,
                "time_bucket": identity.time_bucket,
                "extra_info": identity.extra_info,
            }
            if identity is not None
            else {}
        ),
        p_value=response.p_value,
        partial=response.partial,
        missing_vendors=list(response.missing_vendor_ids),
        raw=response,
    )


class TtpClient:
    """Signed calls to one TTP over mTLS; close it (or use ``with``) when done."""

    def __init__(self, target: str, party: Party, *, timeout_s: float | None = 600.0) -> None:
        self.party = party
        self.channel = party.channel(target, timeout_s=timeout_s)
        self.stub = ttp_pb2_grpc.TtpServiceStub(self.channel)

    def __enter__(self) -> TtpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def attribute(
        self, text: str, *, alpha: float = 0.0, vendors: Sequence[str] = (), max_wait_s: float = 120.0
    ) -> Attribution:
        """Ask the TTP who produced ``text``. A rate-limited request is signed afresh and sent again after
        the wait the TTP names, for at most ``max_wait_s`` in all (0: never retry)."""
        deadline = time.monotonic() + max_wait_s
        while True:
            request = ttp_pb2.AttributeRequest(text=text, alpha=alpha, vendor_ids=list(vendors))
            try:
                response = self.stub.Attribute(self.party.sign(request, "TtpService", "Attribute"))
                return attribution_from_message(response)
            except grpc.RpcError as exc:
                wait_s = _retry_after_s(exc)
                if wait_s is None or time.monotonic() + wait_s > deadline:
                    raise
                time.sleep(wait_s)

    def register_vendor(
        self,
        vendor_id: str,
        public_key: bytes,
        endpoint: str,
        model_ids: Sequence[str],
        *,
        display_name: str = "",
        cert_fingerprint: str = "",
    ) -> Any:
        from safework.watermark.security.signing import key_id_of

        request = ttp_pb2.RegisterVendorRequest(
            vendor_id=vendor_id,
            display_name=display_name,
            keys=[
                ttp_pb2.VendorKey(key_id=key_id_of(public_key), public_key=public_key, algorithm="ed25519")
            ],
            model_ids=list(model_ids),
            scheme="credid",
            scheme_version="1",
            endpoint=endpoint,
            cert_fingerprint=cert_fingerprint,
        )
        return self.stub.RegisterVendor(self.party.sign(request, "TtpService", "RegisterVendor"))

    def audit_entries(self, *, page: int = 1000) -> Iterator[Any]:
        """Every audit entry, oldest first, paged."""
        start = 0
        while True:
            response = self.stub.GetAuditLog(ttp_pb2.GetAuditLogRequest(from_sequence=start, limit=page))
            yield from response.entries
            if not response.entries or response.entries[-1].sequence >= response.head_sequence:
                return
            start = response.entries[-1].sequence + 1


def _retry_after_s(exc: grpc.RpcError) -> float | None:
    """The wait a RESOURCE_EXHAUSTED answer asks for (its ``retry-after-ms`` trailer), else None."""
    if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return None
    for key, value in exc.trailing_metadata() or ():
        if key == RETRY_AFTER_KEY and str(value).isdigit():
            return max(0.01, int(value) / 1000)
    return 0.5


def parse_named_key(text: str) -> tuple[str, bytes]:
    """``NAME=HEX`` (a party and its raw Ed25519 public key, as ``pki keygen`` prints it)."""
    name, sep, value = text.partition("=")
    try:
        raw = bytes.fromhex(value.strip())
    except ValueError:
        raw = b""
    if not sep or not name.strip() or len(raw) != 32:
        raise ConfigError(
            f"{text!r} is not NAME=PUBLIC_KEY_HEX (64 hex digits, the public key `safework watermark pki "
            "keygen` prints)"
        )
    return name.strip(), raw
