"""The watermarker: a scheme bound to a key, a payload width and a model, with embed and extract.

This is the object every integration uses: the transformers logits processor, the vLLM processor, the CLI
and the evaluation harness. ``load_watermarker("credid", key, bits=16)`` resolves the scheme through the
``register_watermark_schemes`` hook, loads the model (the embedded SmolLM2 by default) and validates every
option once, so later calls only deal with text.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from safework.core.models import LoadedModel
from safework.core.plugins import collect
from safework.core.types import WatermarkPayload
from safework.watermark.decoder import DEFAULT_ALPHA, Evidence, Extraction, decode, known_payload_p_value
from safework.watermark.errors import UnknownSchemeError, WatermarkInputError
from safework.watermark.hashing import TAG_TIEBREAK, hash_rows, uniform01
from safework.watermark.keys import WatermarkKey
from safework.watermark.payload import CRC_BITS, SymbolLayout
from safework.watermark.schemes.base import Scheme

if TYPE_CHECKING:
    from safework.watermark.calibration import SeedCalibration
    from safework.watermark.candidates import CandidateExtraction


def scheme_factories() -> dict[str, Any]:
    """Every registered scheme, built-in and third-party."""
    return collect("register_watermark_schemes")


def _resolve(name: str) -> Any:
    factories = scheme_factories()
    if name not in factories:
        known = ", ".join(sorted(factories)) or "none"
        raise UnknownSchemeError(
            f"unknown watermark scheme {name!r}; registered schemes: {known} (`safework watermark schemes`)"
        )
    return factories[name]


def _model(model: str | LoadedModel) -> LoadedModel:
    if isinstance(model, LoadedModel):
        return model
    from safework.core.models import load_causal_lm

    return load_causal_lm(model)


@dataclass
class Watermarker:
    """Embed payloads while generating and extract them from text or token ids."""

    scheme: Scheme
    loaded: LoadedModel
    alpha: float = DEFAULT_ALPHA

    @property
    def layout(self) -> SymbolLayout:
        return self.scheme.layout

    @property
    def bits(self) -> int:
        return self.layout.bits

    def settings(self) -> dict[str, Any]:
        return {**self.scheme.settings(), "alpha": self.alpha, "key_id": self.scheme.key.fingerprint()}

    def with_key(self, key: WatermarkKey) -> Watermarker:
        """This watermarker under another key, sharing the model."""
        return Watermarker(self.scheme.rekeyed(key), self.loaded, self.alpha)

    # ------------------------------------------------------------------------------------------ embedding

    def symbols(self, payload: WatermarkPayload | None) -> list[int] | None:
        return None if payload is None else self.layout.encode(payload)

    def bias_(
        self,
        logits: torch.Tensor,
        generated: Sequence[Sequence[int]],
        payloads: Sequence[WatermarkPayload | None],
    ) -> None:
        """Add the watermark to one decoding step's logits in place; a None payload leaves its row alone."""
        self.scheme.bias_(logits, generated, [self.symbols(p) for p in payloads])

    # ----------------------------------------------------------------------------------------- extraction

    def tokenize(self, text: str) -> torch.Tensor:
        if not isinstance(text, str) or not text.strip():
            raise WatermarkInputError("cannot extract from an empty text; pass the generated text")
        ids = self.loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
        return torch.tensor(ids, dtype=torch.int64)

    def check_length(self, ids: torch.Tensor) -> None:
        """Refuse a sequence no longer than the warm-up, with a message saying how long it must be."""
        if ids.numel() <= self.scheme.warmup:
            raise WatermarkInputError(
                f"text has {ids.numel()} tokens but the first {self.scheme.warmup} are the scheme's warm-up "
                "and "
                f"carry no mark; extraction needs more than {self.scheme.warmup} tokens (ideally 100+)"
            )

    def evidence(self, ids: Sequence[int] | torch.Tensor) -> Evidence:
        """Per-position evidence of a generated-token sequence: what both tests below start from."""
        tensor = torch.as_tensor(ids, dtype=torch.int64).reshape(-1)
        self.check_length(tensor)
        return self.scheme.evidence(tensor)

    def decode(self, evidence: Evidence) -> Extraction:
        return decode(evidence, self.layout, alpha=self.alpha)

    def extract_ids(self, ids: Sequence[int] | torch.Tensor) -> Extraction:
        """Decode the payload carried by a generated-token sequence (prompt excluded)."""
        return self.decode(self.evidence(ids))

    def extract_text(self, text: str) -> Extraction:
        return self.extract_ids(self.tokenize(text))

    def extract_candidates(
        self,
        ids: Sequence[int] | torch.Tensor,
        keys: Sequence[WatermarkKey],
        *,
        calibrations: Mapping[str, SeedCalibration] | None = None,
        payloads: Sequence[WatermarkPayload] | None = None,
    ) -> list[CandidateExtraction]:
        """Extract one text under each candidate key (this watermarker's own key plays no part).

        Equal, key by key, to ``self.with_key(k).extract_ids(ids)``, but the key-independent work (credid:
        the proxy pass) runs once. ``calibrations`` (key fingerprint -> :class:`SeedCalibration`, one for
        every key) adds each seed's calibrated p-value; ``payloads`` (one per key) the exact test that the
        text carries that key's own payload.
        """
        from safework.watermark.candidates import extract_candidates

        return extract_candidates(self, ids, keys, calibrations, payloads)

    def known_payload_p_value(
        self,
        ids: Sequence[int] | torch.Tensor,
        payload: WatermarkPayload,
        *,
        evidence: Evidence | None = None,
    ) -> float:
        """p-value that the text carries exactly ``payload`` (uniform on unwatermarked text).

        ``evidence``: :meth:`evidence` of these same ids under this key, when the caller already has it.
        """
        tensor = torch.as_tensor(ids, dtype=torch.int64).reshape(-1)
        symbols = self.layout.encode(payload)
        if evidence is None:
            evidence = self.evidence(tensor)
        # Keyed draws from the text itself (SipHash of the ids, then of the slot): the same text always gets
        # the same p-value, and nobody without the key can steer the draw.
        text_word = int(hash_rows(self.scheme.prf, tensor.reshape(1, -1).contiguous())[0])
        rows = torch.tensor(
            [[TAG_TIEBREAK, j, text_word] for j in range(self.layout.slots)], dtype=torch.int64
        )
        uniforms = uniform01(hash_rows(self.scheme.prf, rows)).tolist()
        return known_payload_p_value(evidence, self.layout, symbols, uniforms)


def load_watermarker(
    scheme: str,
    key: WatermarkKey,
    bits: int,
    *,
    model: str | LoadedModel = "default",
    symbol_bits: int | None = None,
    crc: bool = False,
    alpha: float = DEFAULT_ALPHA,
    **options: Any,
) -> Watermarker:
    """Build a :class:`Watermarker` for a registered scheme; ``options`` go to the scheme (delta, ...)."""
    factory = _resolve(scheme)
    if not 0 < alpha < 1:
        raise WatermarkInputError(f"alpha must be in (0, 1), got {alpha!r}")
    multibit = getattr(factory, "name", scheme) != "kgw"
    if multibit and bits < 1:
        raise WatermarkInputError(f"scheme {scheme!r} carries a payload: pass --bits >= 1")
    if symbol_bits is not None:
        width = symbol_bits
    else:  # the scheme's width, never wider than the payload (and its CRC) needs
        width = min(getattr(factory, "default_symbol_bits", 4), max(1, bits + (CRC_BITS if crc else 0)))
    layout = SymbolLayout(bits if multibit else 0, width, crc)
    loaded = _model(model)
    from safework.core.models.vocab import logits_width

    accepted = inspect.signature(factory).parameters
    if any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown: list[str] = []
    else:
        unknown = [k for k in options if k not in accepted]
    if unknown:
        raise WatermarkInputError(f"scheme {scheme!r} has no option(s) {', '.join(unknown)}")
    if getattr(factory, "needs_model", False):
        options = {**options, "model": loaded.model}
    built = factory(key, layout, logits_width(loaded.model), **options)
    return Watermarker(built, loaded, alpha)
