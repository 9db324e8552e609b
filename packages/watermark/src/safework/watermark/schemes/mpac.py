"""MPAC (Yoo et al., NAACL 2024): multi-bit by position allocation. Each position is allocated to one
base-r digit of the message by a keyed hash of its context; the vocabulary is split into r colour lists
(gamma = 1/r each) by a second keyed hash, and the digit's colour gets +delta. Decoding takes the most
frequent
colour per digit; here with the same calibrated statistics as every other scheme."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from safework.watermark.decoder import Evidence
from safework.watermark.errors import WatermarkInputError
from safework.watermark.hashing import TAG_MPAC, hash_rows, hash_vocab, tagged, uniform01
from safework.watermark.keys import WatermarkKey
from safework.watermark.payload import SymbolLayout
from safework.watermark.schemes.base import Scheme, counts_from_hits, positive

RADIX_BITS = {2: 1, 4: 2, 8: 3, 16: 4}


class MPACScheme(Scheme):
    name = "mpac"
    description = "multi-bit position allocation, radix r colour lists (Yoo et al.)"
    default_symbol_bits = 2

    def __init__(
        self,
        key: WatermarkKey,
        layout: SymbolLayout,
        vocab_size: int,
        *,
        radix: int = 4,
        delta: float = 2.0,
        context_width: int = 1,
    ):
        if radix not in RADIX_BITS:
            raise WatermarkInputError(f"mpac radix must be one of {sorted(RADIX_BITS)}, got {radix!r}")
        layout = SymbolLayout(layout.bits, RADIX_BITS[radix], layout.crc)
        super().__init__(key, layout, vocab_size, context_width=context_width)
        self.radix = radix
        self.delta = positive("delta", delta)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "radix": self.radix, "delta": self.delta}

    def _colours(self, hashes: torch.Tensor) -> torch.Tensor:
        return (uniform01(hashes) * self.radix).to(torch.int64)

    def _bias_rows(
        self, block: torch.Tensor, ctx: torch.Tensor, symbols: torch.Tensor, generated: list[Sequence[int]]
    ) -> None:
        colours = self._colours(hash_vocab(self.prf, tagged(TAG_MPAC, ctx), self.vocab_size))
        block.add_((colours == symbols.reshape(-1, 1)).to(block.dtype), alpha=self.delta)

    def _token_colours(self, ids: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        return self._colours(hash_rows(self.prf, tagged(TAG_MPAC, ctx, ids)))

    def evidence(self, ids: torch.Tensor) -> Evidence:
        ctx, slots, scored = self.candidate_positions(ids)
        colours = self._token_colours(self.check_ids(ids), ctx)
        hits = torch.nn.functional.one_hot(colours, self.radix).to(torch.bool)
        null = torch.full((colours.shape[0],), 1.0 / self.radix, dtype=torch.float64)
        return Evidence(scored, slots, null, counts_from_hits(hits, slots, scored, self.layout.slots))

    def position_hits(self, ids: torch.Tensor, symbols: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        ctx, slots, scored = self.candidate_positions(ids)
        wanted = torch.tensor(symbols, dtype=torch.int64)[slots]
        return scored, self._token_colours(self.check_ids(ids), ctx) == wanted
