"""A vendor's gRPC service: generate with TTP-issued seeds, extract on the TTP's signed request.

The user's prompt stays here: the TTP is asked only for a seed (vendor, model, version, time), and the
grants it returns are verified and kept in the vendor's grant book. Extraction tests the text under each
candidate seed the TTP names (only this vendor's), reports the best with a p-value corrected for the number
of candidates, and signs the exact report bytes.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from safework.core.rpc.gen.watermark.v1 import ttp_pb2, ttp_pb2_grpc, vendor_pb2, vendor_pb2_grpc
from safework.core.types import WatermarkPayload
from safework.watermark.calibration import SeedCalibration
from safework.watermark.candidates import best_candidate
from safework.watermark.engine import Watermarker
from safework.watermark.errors import WatermarkInputError
from safework.watermark.keys import WatermarkKey
from safework.watermark.security import signing
from safework.watermark.security.messages import (
    MAX_TEXT_CHARS,
    TTP_SIGNER,
    check_message,
    method_name,
    sign_message,
)
from safework.watermark.security.pki import PeerIdentityError, peer_identity
from safework.watermark.security.replay import MemoryReplayGuard
from safework.watermark.ttp.seeds import pack_bits
from safework.watermark.vendor.grants import Grant, GrantBook, verify_grant, watermark_secret

log = logging.getLogger(__name__)
MAX_PROMPT_CHARS = 20_000
MAX_BATCH_PROMPTS = 64  # one GenerateBatch is one forward batch: bounded memory per call
DEFAULT_TEMPERATURE, DEFAULT_TOP_P, DEFAULT_MAX_NEW_TOKENS = 0.7, 0.9, 200  # what a chat vendor serves


@dataclass
class VendorConfig:
    """Who this vendor is and what it trusts."""

    vendor_id: str
    key: signing.SigningKey
    watermark_secret: bytes
    ttp_public_key: bytes
    model_id: str = "default"
    model_version: str = "1"
    require_mtls: bool = True


class VendorServicer(vendor_pb2_grpc.VendorServiceServicer):
    """One vendor, one model (the watermarker's), many grants."""

    def __init__(self, config: VendorConfig, watermarker: Watermarker, grants: GrantBook) -> None:
        if len(config.watermark_secret) < 16:
            raise ValueError("the vendor's watermark secret must be at least 16 bytes")
        self.config, self.watermarker, self.grants = config, watermarker, grants
        self.guard = MemoryReplayGuard(window_s=signing.DEFAULT_MAX_SKEW_S * 2)
        self._lock = threading.Lock()  # one model, one generation or extraction at a time
        self.calibrations: dict[str, SeedCalibration] | None = None

    # -- grants ---------------------------------------------------------------------------------------
    def request_grant(self, ttp: ttp_pb2_grpc.TtpServiceStub, *, now: float | None = None) -> Grant:
        """Ask the TTP for this period's seed (model, version, time only) and keep it."""
        request = ttp_pb2.IssueSeedRequest(vendor_id=self.config.vendor_id)
        identity = request.identity
        identity.vendor_id, identity.model_id = self.config.vendor_id, self.config.model_id
        identity.model_version = self.config.model_version
        identity.timestamp.FromNanoseconds(int((time.time() if now is None else now) * 1e9))
        sign_message(request, method_name("TtpService", "IssueSeed"), self.config.key, self.config.vendor_id)
        grant = ttp.IssueSeed(request)
        verify_grant(grant, self.config.ttp_public_key)
        return self.grants.add(grant)

    def _key(self, grant: Grant) -> WatermarkKey:
        return WatermarkKey(watermark_secret(self.config.watermark_secret, grant.seed))

    # -- RPCs -----------------------------------------------------------------------------------------
    def Generate(self, request: Any, context: grpc.ServicerContext) -> Any:
        (response,) = self._generate([request.prompt], request, context)
        return response

    def GenerateBatch(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not 1 <= len(request.prompts) <= MAX_BATCH_PROMPTS:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"send 1..{MAX_BATCH_PROMPTS} prompts per GenerateBatch, got {len(request.prompts)}",
            )
        responses = self._generate(list(request.prompts), request, context)
        return vendor_pb2.GenerateBatchResponse(responses=responses)

    def _generate(self, prompts: list[str], request: Any, context: grpc.ServicerContext) -> list[Any]:
        """Answer ``prompts`` in one batch with the request's grant and sampling settings."""
        from safework.watermark.generation import generate

        for i, prompt in enumerate(prompts):
            if not prompt.strip() or len(prompt) > MAX_PROMPT_CHARS:
                where = f"prompt {i}" if len(prompts) > 1 else "prompt"
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, f"{where} must be 1..{MAX_PROMPT_CHARS} characters"
                )
        model = self.config.model_id
        if request.model_id and request.model_id != model:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"this vendor serves model {model!r}, not {request.model_id!r}; leave model_id empty",
            )
        grant = self.grants.get(request.seed_id) if request.seed_id else self.grants.current(model)
        if grant is None:
            wanted = request.seed_id or "for the current period"
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"no grant {wanted}; request a seed first")
            raise AssertionError("unreachable: abort raises")
        sampling = request.sampling
        seed = int(sampling.sampling_seed) if sampling.HasField("sampling_seed") else time.time_ns() % 2**31
        payload = WatermarkPayload(grant.payload, grant.payload_bits)
        with self._lock:
            marked = self.watermarker.with_key(self._key(grant))
            outs = generate(
                marked,
                prompts,
                [payload] * len(prompts),
                show_progress=False,
                temperature=sampling.temperature or DEFAULT_TEMPERATURE,
                top_p=sampling.top_p or DEFAULT_TOP_P,
                top_k=int(sampling.top_k),
                max_new_tokens=int(sampling.max_new_tokens or DEFAULT_MAX_NEW_TOKENS),
                batch_size=len(prompts),
                seed=seed,
                chat=request.chat,
            )
        return [
            vendor_pb2.GenerateResponse(
                text=out.text,
                seed_id=grant.seed_id,
                model_id=model,
                generated_tokens=len(out.ids),
                watermarked_tokens=max(0, len(out.ids) - marked.scheme.warmup),
                scheme="credid",
                scheme_version="1",
            )
            for out in outs
        ]

    def Extract(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            caller = peer_identity(context).name if self.config.require_mtls else None
            if request.signature.signer_id != TTP_SIGNER:
                raise signing.SignerMismatchError("only the TTP asks a vendor to extract")
            keys = {signing.key_id_of(self.config.ttp_public_key): self.config.ttp_public_key}
            check_message(
                request,
                method_name("VendorService", "Extract"),
                keys,
                self.guard,
                expected_signer=None if caller is None else TTP_SIGNER,
            )
        except signing.SignerMismatchError as exc:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        except (signing.SignatureError, PeerIdentityError) as exc:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        if len(request.text) > MAX_TEXT_CHARS:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"text longer than {MAX_TEXT_CHARS} characters")
        ids = list(request.candidate_seed_ids)
        grants = [g for g in (self.grants.get(i) for i in ids) if g is not None] if ids else self.grants.all()
        report = self.extract_report(request.text, grants)
        report.request_id, report.nonce = request.request_id, request.nonce
        body = report.SerializeToString(deterministic=True)
        return vendor_pb2.SignedExtractionReport(
            report=body,
            signature=self.config.key.sign(body),
            signature_algorithm="ed25519",
            key_id=self.config.key.key_id,
        )

    def extract_report(self, text: str, grants: Sequence[Grant]) -> Any:
        """The unsigned report: the best candidate and its p-value × the number of candidates (Bonferroni).

        Every candidate is scored in one pass (credid's proxy runs once per text, not once per seed). A
        candidate's p-value is the exact test that the text carries that grant's own payload; with per-seed
        calibrations (``self.calibrations``, key fingerprint -> SeedCalibration) it is the seed's
        calibrated one instead."""
        report = vendor_pb2.ExtractionReport(
            text_sha256=hashlib.sha256(text.encode("utf-8")).digest(),
            vendor_id=self.config.vendor_id,
            candidates_tested=len(grants),
            scheme="credid",
            scheme_version="1",
            p_value=1.0,
        )
        if grants:
            with self._lock:
                try:
                    ids = self.watermarker.tokenize(text)
                    keys = [self._key(g) for g in grants]
                    # With calibrations the calibrated p-value decides; without, the exact test that the
                    # text carries each grant's own payload (the vendor knows it), far stronger than
                    # the decoder's search over every payload.
                    payloads = [WatermarkPayload(g.payload, g.payload_bits) for g in grants]
                    results = self.watermarker.extract_candidates(
                        ids, keys, calibrations=self.calibrations, payloads=payloads
                    )
                except WatermarkInputError as exc:  # too short to carry a mark: nothing is testable
                    log.info("extraction skipped: %s", exc)
                    results = []
            if results:
                best, corrected = best_candidate(results)
                ranked = sorted(results, key=lambda r: -r.z)
                decoded = best.extraction.decoded
                report.best_seed_id = grants[best.index].seed_id
                report.p_value = corrected
                report.z_score = best.z
                report.payload = pack_bits(decoded.value, decoded.bits) if decoded.bits else b""
                report.payload_bits = decoded.bits
                report.bit_confidence[:] = best.extraction.bit_confidence
                report.scored_tokens = best.scored_tokens
                report.runner_up_margin = ranked[0].z - ranked[1].z if len(ranked) > 1 else 0.0
        report.extracted_at.GetCurrentTime()
        return report
