"""The scheme interface: bias logits while generating, turn a text back into evidence for the decoder.

A scheme is built from a key, a payload layout and the vocabulary width (plus the generator model when it
needs a proxy LM). Its two duties:

* :meth:`Scheme.bias_` adds the watermark to one step's logits for a whole batch, each row carrying its own
  payload symbols (rows without symbols, or still inside the warm-up, are left alone);
* :meth:`Scheme.evidence` scores every position of a token sequence
  (see :class:`~safework.watermark.decoder.Evidence`); :meth:`Scheme.shared_work` +
  :meth:`Scheme.keyed_evidence` split it into its key-independent and keyed halves, so a text tested
  under many candidate keys pays the first half once.

Everything that is the same for all schemes lives here: contexts, slot allocation, warm-up, and counting a
repeated (context, token) pair once.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, cast

import torch

from safework.watermark.decoder import Evidence
from safework.watermark.errors import WatermarkInputError
from safework.watermark.hashing import contexts, first_occurrences, slots_for
from safework.watermark.keys import WatermarkKey
from safework.watermark.payload import SymbolLayout


def positive(name: str, value: float, *, upper: float | None = None) -> float:
    """Validate a positive option (and an exclusive upper bound) with a message naming it."""
    if not isinstance(value, int | float) or not value > 0 or (upper is not None and not value < upper):
        bound = f" and below {upper}" if upper is not None else ""
        raise WatermarkInputError(f"option {name} must be a number above 0{bound}, got {value!r}")
    return float(value)


class Scheme(ABC):
    """One watermarking algorithm bound to a key, a payload layout and a vocabulary."""

    name: ClassVar[str]
    description: ClassVar[str]
    needs_model: ClassVar[bool] = False
    default_symbol_bits: ClassVar[int] = 4

    def __init__(self, key: WatermarkKey, layout: SymbolLayout, vocab_size: int, *, context_width: int = 1):
        if not isinstance(context_width, int) or not 1 <= context_width <= 8:
            raise WatermarkInputError(f"context_width must be 1..8 tokens, got {context_width!r}")
        if vocab_size < 2:
            raise WatermarkInputError(f"vocabulary size must be >= 2, got {vocab_size}")
        self.key = key
        self.prf = key.prf_key()
        self.layout = layout
        self.vocab_size = vocab_size
        self.context_width = context_width

    def rekeyed(self, key: WatermarkKey) -> Scheme:
        """The same scheme under another key (shares the proxy and every other option): calibration
        checks draw a fresh key per text."""
        clone = copy.copy(self)
        clone.key = key
        clone.prf = key.prf_key()
        return clone

    # ------------------------------------------------------------------------------------------- settings

    @property
    def warmup(self) -> int:
        """Generated tokens left unwatermarked (and unscored) at the start: the context must exist."""
        return self.context_width

    def settings(self) -> dict[str, Any]:
        """The options that define this watermark (reported with every result)."""
        return {
            "scheme": self.name,
            "bits": self.layout.bits,
            "symbol_bits": self.layout.symbol_bits,
            "crc": self.layout.crc,
            "context_width": self.context_width,
        }

    # ------------------------------------------------------------------------------------------ embedding

    def bias_(
        self, logits: torch.Tensor, generated: Sequence[Sequence[int]], symbols: Sequence[list[int] | None]
    ) -> None:
        """Add the watermark bias in place to ``logits`` (B, V) for the rows that carry symbols."""
        if logits.dim() != 2 or logits.shape[0] != len(generated) or len(generated) != len(symbols):
            raise WatermarkInputError(
                f"logits {tuple(logits.shape)}, {len(generated)} generated rows and {len(symbols)} payload "
                "rows "
                "must agree on the batch size"
            )
        if logits.shape[1] < self.vocab_size:
            raise WatermarkInputError(
                f"logits have {logits.shape[1]} columns but the scheme was built for a "
                f"{self.vocab_size}-token "
                "vocabulary; build the watermarker for this model"
            )
        rows = [b for b, s in enumerate(symbols) if s is not None and len(generated[b]) >= self.warmup]
        if not rows:
            return
        h = self.context_width
        ctx = torch.tensor([list(generated[b][-h:]) for b in rows], dtype=torch.int64)
        slot = slots_for(self.prf, ctx, self.layout.slots).tolist()
        row_symbols = torch.tensor(
            [cast(list[int], symbols[b])[j] for b, j in zip(rows, slot, strict=True)], dtype=torch.int64
        )
        index = torch.tensor(rows, dtype=torch.int64, device=logits.device)
        block = logits.index_select(0, index)[:, : self.vocab_size].float().contiguous()
        self._bias_rows(block, ctx, row_symbols, [generated[b] for b in rows])
        logits[index, : self.vocab_size] = block.to(logits.dtype)

    @abstractmethod
    def _bias_rows(
        self, block: torch.Tensor, ctx: torch.Tensor, symbols: torch.Tensor, generated: list[Sequence[int]]
    ) -> None:
        """Bias ``block`` (R, V) float32 in place; row r has context ``ctx[r]`` and carries ``symbols[r]``."""

    # ----------------------------------------------------------------------------------------- extraction

    def candidate_positions(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(contexts (T, h), slots (T,), mask of positions past the warm-up whose pair is new)."""
        ids = self.check_ids(ids)
        ctx = contexts(ids, self.context_width)
        slots = slots_for(self.prf, ctx, self.layout.slots)
        valid = torch.arange(ids.shape[0]) >= self.warmup
        return ctx, slots, valid & first_occurrences(ctx, ids)

    def check_ids(self, ids: torch.Tensor | Sequence[int]) -> torch.Tensor:
        ids = torch.as_tensor(ids, dtype=torch.int64).reshape(-1)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise WatermarkInputError(
                f"token ids must lie in 0..{self.vocab_size - 1} (the model's vocabulary), got "
                f"{int(ids.min())}..{int(ids.max())}; extract with the tokenizer of the generating model"
            )
        return ids

    @abstractmethod
    def evidence(self, ids: torch.Tensor) -> Evidence:
        """Per-position evidence for a generated-token sequence (prompt excluded)."""

    def shared_work(self, ids: torch.Tensor) -> object | None:
        """The part of :meth:`evidence` that does not depend on the key (credid: the proxy pass), or None.

        Attribution extracts one text under many candidate keys, and a vendor scores every new seed on
        the same human corpus; this is computed once per text and handed to :meth:`keyed_evidence` under
        every key.
        """
        return None

    def keyed_evidence(self, ids: torch.Tensor, shared: object | None) -> Evidence:
        """:meth:`evidence` given :meth:`shared_work` of the same ids, computed under any key of this
        scheme. Schemes without shared work simply recompute."""
        return self.evidence(ids)

    def evidence_for_keys(self, ids: torch.Tensor, keys: Sequence[WatermarkKey]) -> list[Evidence]:
        """:meth:`evidence` of one text under each key, paying the key-independent work once."""
        ids = self.check_ids(ids)
        if len(keys) == 1:  # nothing to share: skip packaging (and re-checking) the shared work
            return [self.rekeyed(keys[0]).evidence(ids)]
        shared = self.shared_work(ids)
        return [self.rekeyed(k).keyed_evidence(ids, shared) for k in keys]

    @abstractmethod
    def position_hits(self, ids: torch.Tensor, symbols: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(scored (T,), hit (T,)) for one given symbol sequence: what the HTML view colours."""


def counts_from_hits(
    hits: torch.Tensor, slots: torch.Tensor, scored: torch.Tensor, n_slots: int
) -> torch.Tensor:
    """(J, C) hit counts from a (T, C) hit matrix, counting scored positions only."""
    counts = torch.zeros(n_slots, hits.shape[1], dtype=torch.int64)
    keep = scored.nonzero().flatten()
    counts.index_add_(0, slots[keep], hits[keep].to(torch.int64))
    return counts
