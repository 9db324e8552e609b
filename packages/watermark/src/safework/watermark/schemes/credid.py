"""CredID's multi-bit watermark (credid.md §3) with the fixes of §7.

Per generated position t (past a warm-up of ``window`` tokens):

1. the proxy LM reads only the last ``window`` generated tokens and gives q (top ``top_k`` + the rest; by
   default the generator's first layer with its LM head cut to the first ``proxy_vocab`` ids, see
   ``safework.watermark.proxy``);
2. a keyed hash of the previous ``context_width`` tokens picks the payload slot j, whose b-bit symbol m the
   position carries;
3. a keyed hash of (context, m) picks one of ``permutations`` (P) permutations of the vocabulary;
4. walking the vocabulary in that permutation's order, the tokens after the first ``tau`` of proxy mass are
   green (the token that crosses tau included) and get +``delta``.

Extraction recomputes q for every position in one batched proxy pass, tests the observed token in all P
permutations (a (T, P) table: its mean is the exact null hit rate of the position), maps every candidate
symbol to its permutation and counts hits per slot (native kernels, ``safework.watermark.kernels``). The
decoder turns the counts into exact p-values. Everything keyed goes through SipHash, never Python's ``hash``
or torch's RNG, so it is identical across machines and devices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import PreTrainedModel

from safework.watermark.decoder import Evidence, grouped_null_pmfs
from safework.watermark.errors import WatermarkInputError
from safework.watermark.hashing import TAG_INDEX, TAG_PERM, hash_rows, tagged, unsigned_mod
from safework.watermark.kernels import candidate_counts, check_tops, green_bias, green_table
from safework.watermark.keys import WatermarkKey
from safework.watermark.payload import SymbolLayout
from safework.watermark.proxy import Proxy, ProxyOutput, ProxyPass
from safework.watermark.schemes.base import Scheme, positive

# Defaults measured on the embedded SmolLM2 (benchmarks/RESULTS.md, "credid defaults").
DEFAULTS: dict[str, Any] = {
    "delta": 2.5,
    "tau": 0.9,
    "permutations": 50,
    "window": 10,
    "top_k": 256,
    "proxy_layers": 1,
    "proxy_vocab": 16384,
    "context_width": 1,
}


class CredIDScheme(Scheme):
    name = "credid"
    description = "CredID multi-bit watermark: proxy-mass green lists, P permutations, calibrated decoder"
    needs_model = True
    # Wider symbols put more positions behind each decision: at 200 tokens, 8-bit symbols beat 4-bit ones
    # at the same distortion (benchmarks/RESULTS.md, "credid 32-bit payloads"); 256 candidates per slot
    # still cost one hash per (position, candidate).
    default_symbol_bits = 8

    def __init__(
        self,
        key: WatermarkKey,
        layout: SymbolLayout,
        vocab_size: int,
        *,
        model: PreTrainedModel,
        delta: float = DEFAULTS["delta"],
        tau: float = DEFAULTS["tau"],
        permutations: int = DEFAULTS["permutations"],
        window: int = DEFAULTS["window"],
        top_k: int = DEFAULTS["top_k"],
        proxy_layers: int = DEFAULTS["proxy_layers"],
        proxy_vocab: int = DEFAULTS["proxy_vocab"],
        context_width: int = DEFAULTS["context_width"],
    ):
        super().__init__(key, layout, vocab_size, context_width=context_width)
        if not isinstance(permutations, int) or not 1 <= permutations <= 4096:
            raise WatermarkInputError(f"permutations (P) must be 1..4096, got {permutations!r}")
        if not isinstance(window, int) or window < context_width:
            raise WatermarkInputError(
                f"window must be an int >= context_width ({context_width}), got {window!r}"
            )
        self.delta = positive("delta", delta)
        self.tau = positive("tau", tau, upper=1.0)
        self.permutations = permutations
        self.proxy_layers = proxy_layers
        self.proxy = Proxy(model, layers=proxy_layers, window=window, top_k=top_k, vocab=proxy_vocab)

    @property
    def warmup(self) -> int:
        return self.proxy.window

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(),
            "delta": self.delta,
            "tau": self.tau,
            "permutations": self.permutations,
            "window": self.proxy.window,
            "top_k": self.proxy.top_k,
            "proxy_layers": self.proxy_layers,
            "proxy_vocab": self.proxy.vocab,
        }

    def _permutation_index(self, ctx: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
        return unsigned_mod(hash_rows(self.prf, tagged(TAG_INDEX, ctx, symbols)), self.permutations)

    def _bias_rows(
        self, block: torch.Tensor, ctx: torch.Tensor, symbols: torch.Tensor, generated: list[Sequence[int]]
    ) -> None:
        windows = torch.tensor([list(g[-self.proxy.window :]) for g in generated], dtype=torch.int64)
        q = self.proxy(windows)
        prefix = tagged(TAG_PERM, ctx, self._permutation_index(ctx, symbols))
        green_bias(
            self.prf, prefix, q.top_ids, q.top_probs, q.rest, self.vocab_size, self.tau, block, self.delta
        )

    def _table(
        self, ids: torch.Tensor, ctx: torch.Tensor, positions: torch.Tensor, q: ProxyOutput | None = None
    ) -> torch.Tensor:
        """(T, P) green table for the given positions (rows for other positions stay False); ``q``: the
        proxy output at those positions, computed and checked once by :meth:`shared_work`."""
        table = torch.zeros(ids.shape[0], self.permutations, dtype=torch.bool)
        if positions.numel() == 0:
            return table
        checked = q is not None
        if q is None:
            q = self.proxy.along(ids, positions)
        sub_ctx = tagged(TAG_PERM, ctx[positions])
        table[positions] = green_table(
            self.prf,
            sub_ctx,
            ids[positions].contiguous(),
            q.top_ids,
            q.top_probs,
            q.rest,
            self.permutations,
            self.tau,
            tops_checked=checked,
        )
        return table

    def _scored(
        self, ids: torch.Tensor, shared: ProxyPass | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(contexts, slots, scored mask, (T, P) green table, per-position null rate)."""
        ctx, slots, valid = self.candidate_positions(ids)
        table = self._table(ids, ctx, valid.nonzero().flatten(), None if shared is None else shared.q)
        null = table.to(torch.float64).mean(dim=1)
        scored = valid & (null > 0) & (null < 1)  # a token green (or red) in every permutation says nothing
        return ctx, slots, scored, table, null

    def shared_work(self, ids: torch.Tensor) -> ProxyPass:
        """The proxy pass over the scored positions: it does not depend on the key."""
        ids = self.check_ids(ids)
        positions = self.candidate_positions(ids)[2].nonzero().flatten()
        q = self.proxy.along(ids, positions) if positions.numel() else None
        if q is not None:
            check_tops(q.top_ids, q.top_probs, q.rest)
        return ProxyPass(ids.clone(), positions, q, self.proxy.signature(self.context_width))

    def _check_shared(self, ids: torch.Tensor, shared: object | None) -> ProxyPass | None:
        if shared is None:
            return None
        if not isinstance(shared, ProxyPass) or shared.signature != self.proxy.signature(self.context_width):
            raise WatermarkInputError(
                "shared work was computed by another scheme, proxy or model; compute it with this "
                "watermarker's scheme.shared_work(ids)"
            )
        if not torch.equal(shared.ids, ids):
            raise WatermarkInputError("shared work belongs to another text; compute it from these ids")
        return shared

    def evidence(self, ids: torch.Tensor) -> Evidence:
        return self.keyed_evidence(ids, None)

    def keyed_evidence(self, ids: torch.Tensor, shared: object | None) -> Evidence:
        ids = self.check_ids(ids)
        ctx, slots, scored, table, null = self._scored(ids, self._check_shared(ids, shared))
        masked = torch.where(scored, slots, torch.full_like(slots, -1))
        counts = candidate_counts(
            self.prf, tagged(TAG_INDEX, ctx), table, masked, self.layout.slots, self.layout.candidates
        )
        # Positions after the same context share their permutation for every candidate: one draw per
        # context, so the slot's null is a convolution over contexts, not over positions.
        keep = scored.nonzero().flatten()
        _, groups = torch.unique(ctx[keep], dim=0, return_inverse=True)
        pmfs = grouped_null_pmfs(table[keep], groups, slots[keep], self.layout.slots)
        return Evidence(scored, slots, null, counts, pmfs)

    def position_hits(self, ids: torch.Tensor, symbols: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = self.check_ids(ids)
        ctx, slots, scored, table, _ = self._scored(ids)
        wanted = torch.tensor(symbols, dtype=torch.int64)[slots]
        r = self._permutation_index(ctx, wanted)
        return scored, table.gather(1, r.reshape(-1, 1)).flatten()
