"""Extraction of one text under many candidate keys: what a vendor runs when the TTP asks for attribution.

In the CredID protocol the TTP sends a vendor the suspect text and the seeds it issued to that vendor (one
per grant, so dozens); the vendor extracts under each and reports the best. credid's extraction is mostly
a proxy-LM pass over the text that no key enters, so it runs once per text
(:meth:`~safework.watermark.schemes.base.Scheme.shared_work`) and only the keyed hashing runs per key.
Schemes without such work simply extract key by key.

Each result carries the decoder's p-value (valid averaged over keys) and, when the vendor calibrated the
seed on human text (:mod:`safework.watermark.calibration`), the calibrated one, valid for that seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from safework.core.types import WatermarkPayload
from safework.watermark.decoder import Extraction
from safework.watermark.errors import WatermarkInputError
from safework.watermark.keys import WatermarkKey

if TYPE_CHECKING:
    from safework.watermark.calibration import SeedCalibration
    from safework.watermark.engine import Watermarker


@dataclass(frozen=True)
class CandidateExtraction:
    """What one candidate key finds in the text. ``extraction.detected`` is the decoder's own decision
    (uncalibrated p-value against the watermarker's alpha); attribution decides on :attr:`p_value`."""

    index: int  # position of the key in the candidate list
    fingerprint: str  # the key's public fingerprint
    extraction: Extraction  # the decoder's full result under this key
    calibrated_p_value: float | None = None  # the seed's calibrated p-value; None without a calibration
    known_payload_p_value: float | None = None  # "carries exactly this seed's payload"; None if not asked

    @property
    def payload(self) -> WatermarkPayload:
        """The best payload under this key, significant or not."""
        return self.extraction.decoded

    @property
    def raw_p_value(self) -> float:
        """The decoder's presence p-value (uniform over keys, not per key)."""
        return self.extraction.p_value

    @property
    def p_value(self) -> float:
        """The calibrated p-value when there is one, else the known-payload test's, else the decoder's."""
        if self.calibrated_p_value is not None:
            return self.calibrated_p_value
        if self.known_payload_p_value is not None:
            return self.known_payload_p_value
        return self.raw_p_value

    @property
    def z(self) -> float:
        return self.extraction.z

    @property
    def scored_tokens(self) -> int:
        return self.extraction.scored_tokens

    @property
    def hits(self) -> int:
        """Green hits of the decoded symbols, summed over slots."""
        return sum(s.hits for s in self.extraction.slots)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "fingerprint": self.fingerprint,
            "payload": self.payload.to_hex(),
            "raw_p_value": self.raw_p_value,
            "calibrated_p_value": self.calibrated_p_value,
            "known_payload_p_value": self.known_payload_p_value,
            "z": self.z,
            "scored_tokens": self.scored_tokens,
            "hits": self.hits,
            "crc_ok": self.extraction.crc_ok,
        }


def extract_candidates(
    watermarker: Watermarker,
    ids: Sequence[int] | torch.Tensor,
    keys: Sequence[WatermarkKey],
    calibrations: Mapping[str, SeedCalibration] | None = None,
    payloads: Sequence[WatermarkPayload] | None = None,
) -> list[CandidateExtraction]:
    """Extract ``ids`` under every key, in order; see :meth:`Watermarker.extract_candidates`.

    ``payloads`` (one per key): the payload each key's grant embeds. A vendor knows it, so it can test
    "this text carries exactly this payload" (exact, no search over the 2^bits payloads the decoder
    corrects for) instead of "this text carries some payload": far more power on short or low-entropy text.
    """
    if not keys:
        raise WatermarkInputError("no candidate keys: pass at least one WatermarkKey")
    bad = [i for i, k in enumerate(keys) if not isinstance(k, WatermarkKey)]
    if bad:
        raise WatermarkInputError(f"candidate keys must be WatermarkKey objects; entries {bad} are not")
    fingerprints = [k.fingerprint() for k in keys]
    chosen: list[SeedCalibration | None] = [None] * len(keys)
    if calibrations is not None:
        missing = [f for f in fingerprints if f not in calibrations]
        if missing:
            raise WatermarkInputError(
                f"no calibration for key(s) {', '.join(missing)}; calibrate each seed when its grant "
                "arrives (safework.watermark.calibration.calibrate) or pass calibrations=None"
            )
        chosen = [calibrations[f] for f in fingerprints]
        for calibration in chosen:
            assert calibration is not None
            calibration.check_settings(watermarker)
    if payloads is not None and len(payloads) != len(keys):
        raise WatermarkInputError(f"{len(payloads)} payloads for {len(keys)} keys; pass one per key or None")
    tensor = torch.as_tensor(ids, dtype=torch.int64).reshape(-1)
    watermarker.check_length(tensor)
    evidences = watermarker.scheme.evidence_for_keys(tensor, keys)
    results = []
    for i, (fingerprint, evidence, calibration) in enumerate(
        zip(fingerprints, evidences, chosen, strict=True)
    ):
        extraction = watermarker.decode(evidence)
        calibrated = None if calibration is None else calibration.p_value(extraction.p_value)
        known = None
        if payloads is not None:
            known = watermarker.with_key(keys[i]).known_payload_p_value(
                tensor, payloads[i], evidence=evidence
            )
        results.append(CandidateExtraction(i, fingerprint, extraction, calibrated, known))
    return results


def best_candidate(results: Sequence[CandidateExtraction]) -> tuple[CandidateExtraction, float]:
    """The candidate with the smallest p-value, and that p-value Bonferroni-corrected for the number of
    candidates (valid whatever their dependence): what a vendor reports to the TTP."""
    if not results:
        raise WatermarkInputError("no candidate results to choose from")
    best = min(results, key=lambda r: (r.p_value, r.index))
    return best, min(1.0, best.p_value * len(results))
