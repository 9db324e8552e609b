"""Attribution at the TTP: ask every vendor to extract under its own seeds, check, correct, decide.

Each vendor gets the text and only the ids of the seeds issued to it (vendors never see each other's
seeds), extracts with its private model and key, and returns a signed report whose p-value is already
corrected for the candidates it tested. The TTP verifies each report against the vendor's registered key
and the request it sent, corrects across the vendors that answered (Holm by default; Bonferroni on
request), and decides: one vendor significant → attributed; none → none; several → ambiguous. A vendor
that is down or too slow does not block the others: the decision is flagged partial and names it.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from safework.core.rpc.gen.watermark.v1 import ttp_pb2, vendor_pb2, vendor_pb2_grpc
from safework.core.rpc.tls import ClientTls
from safework.watermark.security import signing
from safework.watermark.security.messages import TTP_SIGNER, method_name, sign_message
from safework.watermark.ttp.store import TTPStore, VendorRecord

log = logging.getLogger(__name__)


class VendorCaller(Protocol):
    """Sends an ExtractRequest to one vendor and returns its SignedExtractionReport (raises on failure)."""

    def __call__(self, vendor: VendorRecord, request: Any, timeout_s: float) -> Any: ...


class GrpcVendorCaller:
    """Calls vendors over (m)TLS gRPC, one cached channel per endpoint."""

    def __init__(self, tls: ClientTls | None) -> None:
        self.tls = tls
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()

    def __call__(self, vendor: VendorRecord, request: Any, timeout_s: float) -> Any:
        from safework.core.rpc.client import connect

        with self._lock:
            channel = self._channels.get(vendor.endpoint)
            if channel is None:
                channel = connect(vendor.endpoint, tls=self.tls, retries=0, default_timeout=None)
                self._channels[vendor.endpoint] = channel
        return vendor_pb2_grpc.VendorServiceStub(channel).Extract(request, timeout=timeout_s)

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()


@dataclass
class _Outcome:
    vendor: VendorRecord
    report: Any = None  # parsed ExtractionReport when usable
    signed: Any = None
    valid: bool = False
    error: str = ""


def corrected(p_values: Sequence[float], correction: int) -> list[float]:
    """Family-wise corrected p-values: Bonferroni, or Holm's step-down (the default; never larger)."""
    m = len(p_values)
    if correction == ttp_pb2.CORRECTION_BONFERRONI:
        return [min(1.0, p * m) for p in p_values]
    order = sorted(range(m), key=lambda i: p_values[i])
    out, running = [1.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        out[i] = running
    return out


class Attributor:
    """Fans an attribution out to the vendors and turns their reports into a decision."""

    def __init__(
        self, store: TTPStore, key: signing.SigningKey, caller: VendorCaller, *, timeout_s: float = 120.0
    ) -> None:
        self.store, self.key, self.caller, self.timeout_s = store, key, caller, timeout_s
        self.pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="ttp-attribute")

    def _ask(self, vendor: VendorRecord, text: str, request_id: str) -> _Outcome:
        seeds = [g.grant_id for g in self.store.grants_for_vendor(vendor.vendor_id)]
        request = vendor_pb2.ExtractRequest(
            request_id=request_id, text=text, candidate_seed_ids=seeds, nonce=secrets.token_bytes(16)
        )
        request.requested_at.GetCurrentTime()
        sign_message(request, method_name("VendorService", "Extract"), self.key, TTP_SIGNER)
        outcome = _Outcome(vendor)
        try:
            signed = self.caller(vendor, request, self.timeout_s)
        except grpc.RpcError as exc:
            outcome.error = f"{exc.code().name}: {exc.details()}"
            return outcome
        except Exception as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
            return outcome
        outcome.signed = signed
        outcome.error = self._verify(vendor, request, signed, set(seeds))
        if not outcome.error:
            outcome.report, outcome.valid = vendor_pb2.ExtractionReport.FromString(signed.report), True
        return outcome

    def _verify(self, vendor: VendorRecord, request: Any, signed: Any, seeds: set[str]) -> str:
        keys = dict(vendor.public_keys)
        public = keys.get(signed.key_id)
        if public is None or not signing.verify(public, bytes(signed.report), bytes(signed.signature)):
            return f"report signature does not verify against {vendor.vendor_id}'s key {signed.key_id!r}"
        report = vendor_pb2.ExtractionReport.FromString(signed.report)
        digest = hashlib.sha256(request.text.encode("utf-8")).digest()
        checks = (
            (report.request_id == request.request_id, "request_id"),
            (bytes(report.nonce) == bytes(request.nonce), "nonce"),
            (bytes(report.text_sha256) == digest, "text_sha256"),
            (report.vendor_id == vendor.vendor_id, "vendor_id"),
            (not report.best_seed_id or report.best_seed_id in seeds, "best_seed_id"),
            (0.0 <= report.p_value <= 1.0, "p_value"),
        )
        wrong = [name for ok, name in checks if not ok]
        return f"report does not match the request ({', '.join(wrong)})" if wrong else ""

    def attribute(
        self, text: str, alpha: float, vendor_ids: Sequence[str], correction: int, request_id: str
    ) -> Any:
        vendors = self.store.list_vendors()
        if vendor_ids:
            known = {v.vendor_id for v in vendors}
            unknown = [v for v in vendor_ids if v not in known]
            if unknown:
                raise ValueError(f"unknown vendor(s) {', '.join(unknown)}; list registered vendors first")
            vendors = [v for v in vendors if v.vendor_id in set(vendor_ids)]
        request_id = request_id or f"att-{int(time.time() * 1000)}-{secrets.token_hex(4)}"
        outcomes = list(self.pool.map(lambda v: self._ask(v, text, request_id), vendors))
        answered = [o for o in outcomes if o.valid and o.report.best_seed_id]
        adjusted = corrected([o.report.p_value for o in answered], correction)
        correction = correction or ttp_pb2.CORRECTION_HOLM
        response = ttp_pb2.AttributeResponse(alpha=alpha, request_id=request_id)
        response.correction = correction  # type: ignore[assignment]
        by_vendor = dict(zip((o.vendor.vendor_id for o in answered), adjusted, strict=True))
        for o in outcomes:
            finding = response.findings.add(
                vendor_id=o.vendor.vendor_id, signature_valid=o.valid, error=o.error
            )
            if o.signed is not None:
                finding.report.CopyFrom(o.signed)
            finding.corrected_p_value = by_vendor.get(o.vendor.vendor_id, 1.0)
        missing = [o.vendor.vendor_id for o in outcomes if not o.valid]
        response.partial, response.missing_vendor_ids[:] = bool(missing), missing
        significant = [o for o in answered if by_vendor[o.vendor.vendor_id] <= alpha]
        response.p_value = min(adjusted, default=1.0)
        if len(significant) == 1:
            best = significant[0]
            grant = self.store.get_grant(best.report.best_seed_id)
            response.decision = ttp_pb2.DECISION_ATTRIBUTED
            response.vendor_id, response.seed_id = best.vendor.vendor_id, best.report.best_seed_id
            if grant is not None:
                identity = response.identity
                identity.vendor_id, identity.model_id = grant.identity.vendor_id, grant.identity.model_id
                identity.model_version, identity.extra_info = (
                    grant.identity.model_version,
                    grant.identity.extra_info,
                )
                identity.time_bucket = grant.identity.time_bucket
        elif significant:
            response.decision = ttp_pb2.DECISION_AMBIGUOUS
        else:
            response.decision = ttp_pb2.DECISION_NONE
        return response
