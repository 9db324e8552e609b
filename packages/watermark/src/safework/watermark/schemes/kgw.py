"""KGW (Kirchenbauer et al. 2023): the zero-bit baseline. A keyed hash of the previous token picks a green
fraction gamma of the vocabulary, green logits get +delta, and detection is a one-proportion test on the green
count, here with the exact binomial tail instead of the normal approximation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from safework.watermark.decoder import Evidence
from safework.watermark.hashing import TAG_KGW, hash_rows, hash_vocab, tagged, uniform01
from safework.watermark.keys import WatermarkKey
from safework.watermark.payload import SymbolLayout
from safework.watermark.schemes.base import Scheme, counts_from_hits, positive


class KGWScheme(Scheme):
    name = "kgw"
    description = "zero-bit green-list watermark (Kirchenbauer et al.), exact binomial test"

    def __init__(
        self,
        key: WatermarkKey,
        layout: SymbolLayout,
        vocab_size: int,
        *,
        gamma: float = 0.25,
        delta: float = 2.0,
        context_width: int = 1,
    ):
        super().__init__(key, SymbolLayout(0, 1), vocab_size, context_width=context_width)
        self.gamma = positive("gamma", gamma, upper=1.0)
        self.delta = positive("delta", delta)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "gamma": self.gamma, "delta": self.delta}

    def _bias_rows(
        self, block: torch.Tensor, ctx: torch.Tensor, symbols: torch.Tensor, generated: list[Sequence[int]]
    ) -> None:
        green = uniform01(hash_vocab(self.prf, tagged(TAG_KGW, ctx), self.vocab_size)) < self.gamma
        block.add_(green.to(block.dtype), alpha=self.delta)

    def _hits(self, ids: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        return uniform01(hash_rows(self.prf, tagged(TAG_KGW, ctx, ids))) < self.gamma

    def evidence(self, ids: torch.Tensor) -> Evidence:
        ctx, slots, scored = self.candidate_positions(ids)
        hits = self._hits(self.check_ids(ids), ctx).reshape(-1, 1)
        null = torch.full((hits.shape[0],), self.gamma, dtype=torch.float64)
        return Evidence(scored, slots, null, counts_from_hits(hits, slots, scored, 1))

    def position_hits(self, ids: torch.Tensor, symbols: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        ctx, _, scored = self.candidate_positions(ids)
        return scored, self._hits(self.check_ids(ids), ctx)
