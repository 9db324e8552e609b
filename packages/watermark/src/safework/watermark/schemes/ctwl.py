"""CTWL Message-Hash ("Vanilla-Marking", Wang et al. 2024): token v is green for symbol m after a context iff
a keyed hash of (context, m, v) is odd (gamma = 1/2); decoding counts hits for every candidate symbol. Here
the symbols ride on the same keyed position slots as credid, so the two differ only in how green lists are
drawn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from safework.watermark.decoder import Evidence
from safework.watermark.hashing import TAG_CTWL, hash_rows, hash_vocab, tagged
from safework.watermark.keys import WatermarkKey
from safework.watermark.payload import SymbolLayout
from safework.watermark.schemes.base import Scheme, counts_from_hits, positive


class CTWLHashScheme(Scheme):
    name = "ctwl-hash"
    description = "multi-bit message-hash green lists (CTWL vanilla marking), gamma 1/2"

    def __init__(
        self,
        key: WatermarkKey,
        layout: SymbolLayout,
        vocab_size: int,
        *,
        delta: float = 2.0,
        context_width: int = 1,
    ):
        super().__init__(key, layout, vocab_size, context_width=context_width)
        self.delta = positive("delta", delta)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "delta": self.delta}

    def _bias_rows(
        self, block: torch.Tensor, ctx: torch.Tensor, symbols: torch.Tensor, generated: list[Sequence[int]]
    ) -> None:
        green = hash_vocab(self.prf, tagged(TAG_CTWL, ctx, symbols), self.vocab_size) & 1
        block.add_(green.to(block.dtype), alpha=self.delta)

    def _hit_table(self, ids: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        """(T, C): is token t green for candidate m."""
        t, c = ids.shape[0], self.layout.candidates
        rep_ctx = ctx.repeat_interleave(c, dim=0)
        candidates = torch.arange(c, dtype=torch.int64).repeat(t)
        rows = tagged(TAG_CTWL, rep_ctx, candidates, ids.repeat_interleave(c))
        return (hash_rows(self.prf, rows) & 1).reshape(t, c).to(torch.bool)

    def evidence(self, ids: torch.Tensor) -> Evidence:
        ctx, slots, scored = self.candidate_positions(ids)
        hits = self._hit_table(self.check_ids(ids), ctx)
        null = torch.full((hits.shape[0],), 0.5, dtype=torch.float64)
        return Evidence(scored, slots, null, counts_from_hits(hits, slots, scored, self.layout.slots))

    def position_hits(self, ids: torch.Tensor, symbols: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        ctx, slots, scored = self.candidate_positions(ids)
        wanted = torch.tensor(symbols, dtype=torch.int64)[slots]
        rows = tagged(TAG_CTWL, ctx, wanted, self.check_ids(ids))
        return scored, (hash_rows(self.prf, rows) & 1).to(torch.bool)
