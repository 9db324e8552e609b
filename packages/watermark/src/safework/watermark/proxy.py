"""The proxy LM of credid: a cheap next-token distribution that generator and detector both recompute.

CredID defines each green list by probability mass under a proxy distribution q over the last ``window``
generated tokens only, so the detector can recompute q from the text alone. The proxy here is the generator
itself, cut to its first ``layers`` decoder layers (weights shared, nothing copied), which keeps its
distribution close to the model's while costing a fraction of a step; ``layers=0`` (or "full") keeps all.

q is truncated to its ``top_k`` most likely tokens; the remaining mass is spread evenly along the keyed
permutation order (see ``safework.watermark.kernels``), identically at generation and extraction, so the
green test needs K+1 hashes per permutation instead of a full-vocabulary sort.

Two choices keep the detector cheap (benchmarks/RESULTS.md, "credid extraction speed"):

* ``vocab``: q is a softmax over the first ``vocab`` token ids only. BPE vocabularies are numbered in merge
  order, so these are the most frequent pieces (the first 16,384 of SmolLM2 cover ~90 % of running text);
  the LM head, which dominates a one-layer proxy, shrinks by the same factor.
* with one layer, the window's distribution is what a single causal pass over the whole text gives under a
  ``window``-wide sliding attention mask (:meth:`Proxy.along`), so the detector runs one pass per text
  instead of one per position. Deeper proxies see past their window in such a pass and fall back to
  windows.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedModel

from safework.watermark.errors import WatermarkInputError


@dataclass(frozen=True)
class ProxyOutput:
    """Truncated proxy distributions for N windows."""

    top_ids: torch.Tensor  # (N, K) int64
    top_probs: torch.Tensor  # (N, K) float32
    rest: torch.Tensor  # (N,) float64 mass outside the top K


@dataclass(frozen=True)
class ProxyPass:
    """The proxy distributions before every scored position of one text: the key-independent half of
    credid's extraction, computed once and reused under every candidate key (and, for calibration, kept
    per human text: about K * 12 bytes per position, 0.6 MB for 200 tokens at K = 256)."""

    ids: torch.Tensor  # (T,) the text, so a pass is never applied to another one
    positions: torch.Tensor  # (N,) scored positions (past the warm-up, first (context, token) pairs)
    q: ProxyOutput | None  # None when no position is scored
    signature: tuple[int, ...]  # the proxy settings and weights it was computed with


def truncated_model(model: PreTrainedModel, layers: int) -> PreTrainedModel:
    """The same model with only its first ``layers`` decoder layers; parameters are shared, not copied."""
    if layers <= 0:
        return model
    inner: Any = getattr(model, "model", None)
    blocks = getattr(inner, "layers", None)
    if inner is None or blocks is None:
        raise WatermarkInputError(
            f"cannot cut {type(model).__name__} to {layers} layers (no model.layers); "
            "use proxy_layers=0 (the full model)"
        )
    if layers >= len(blocks):
        return model
    # copy.copy shares the _modules dicts, so replace them before swapping children: the original model
    # must keep all its layers.
    shallow = copy.copy(model)
    shallow._modules = model._modules.copy()
    shallow_inner = copy.copy(inner)
    shallow_inner._modules = inner._modules.copy()
    shallow_inner.layers = torch.nn.ModuleList(list(blocks)[:layers])
    shallow.model = shallow_inner
    config = copy.copy(model.config)
    config.num_hidden_layers = layers
    shallow.config = config
    shallow_inner.config = config
    return shallow


class Proxy:
    """Batched proxy distributions over fixed-length windows of token ids."""

    def __init__(
        self,
        model: PreTrainedModel,
        *,
        layers: int,
        window: int,
        top_k: int,
        vocab: int = 0,
        batch_size: int = 256,
    ):
        if window < 1:
            raise WatermarkInputError(f"proxy window must be >= 1 token, got {window}")
        if top_k < 1:
            raise WatermarkInputError(f"proxy top_k must be >= 1, got {top_k}")
        if not isinstance(vocab, int) or vocab < 0 or 0 < vocab < top_k:
            raise WatermarkInputError(
                f"proxy vocab must be 0 (all tokens) or >= top_k ({top_k}), got {vocab!r}"
            )
        self.model = truncated_model(model, layers)
        self.window = window
        self.top_k = top_k
        self.batch_size = batch_size
        head = getattr(self.model, "lm_head", None)
        inner = getattr(self.model, "model", None)
        # Cutting the head and the single pass need the base model and a plain linear head; other
        # architectures keep the model's own logits over the whole vocabulary.
        self.head: torch.nn.Linear | None = (
            head if isinstance(head, torch.nn.Linear) and inner is not None else None
        )
        width = 0 if self.head is None else int(self.head.weight.shape[0])
        self.vocab = vocab if 0 < vocab < width else width
        self.single_pass = layers == 1 and self.head is not None

    def _logits(self, ids: torch.Tensor) -> torch.Tensor:
        """Proxy logits (N, V') after the last token of each row of ids."""
        if self.head is None:
            return self.model(input_ids=ids, use_cache=False, logits_to_keep=1).logits[:, -1, :]
        return self._project(self._hidden(ids)[:, -1, :])

    def _hidden(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Final hidden states (N, L, H); ``mask`` is an (L, L) bool attention mask shared by the rows."""
        inner: Any = self.model.model
        extra = {} if mask is None else {"attention_mask": mask.expand(ids.shape[0], 1, -1, -1)}
        return inner(input_ids=ids, use_cache=False, **extra).last_hidden_state

    def _project(self, hidden: torch.Tensor) -> torch.Tensor:
        """The LM head cut to the first ``vocab`` ids."""
        assert self.head is not None
        bias = None if self.head.bias is None else self.head.bias[: self.vocab]
        return torch.nn.functional.linear(hidden, self.head.weight[: self.vocab], bias)

    def _truncate(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k ids and their softmax probabilities, without materialising the whole softmax."""
        logits = logits.float()
        top = torch.topk(logits, min(self.top_k, logits.shape[-1]), dim=-1)
        probs = torch.exp(top.values - torch.logsumexp(logits, dim=-1, keepdim=True))
        return top.indices.to(torch.int64), probs.to(torch.float32)

    @staticmethod
    def _output(ids: list[torch.Tensor], probs: list[torch.Tensor], top_k: int) -> ProxyOutput:
        if not ids:
            empty_ids = torch.empty(0, top_k, dtype=torch.int64)
            return ProxyOutput(empty_ids, torch.empty(0, top_k), torch.empty(0, dtype=torch.float64))
        top_ids = torch.cat(ids).cpu().contiguous()
        top_probs = torch.cat(probs).cpu().contiguous()
        rest = (1.0 - top_probs.to(torch.float64).sum(dim=1)).clamp(min=0.0)
        return ProxyOutput(top_ids, top_probs, rest.contiguous())

    def signature(self, context_width: int) -> tuple[int, ...]:
        """What a :class:`ProxyPass` depends on besides the ids: settings and (shared) weights."""
        weights = next(self.model.parameters()).data_ptr()
        layers = int(getattr(self.model.config, "num_hidden_layers", 0) or 0)
        return (self.window, self.top_k, self.vocab, layers, context_width, weights)

    @torch.inference_mode()
    def __call__(self, windows: torch.Tensor) -> ProxyOutput:
        """Distributions after each (N, window) row of ids."""
        if windows.dim() != 2 or windows.shape[1] != self.window:
            raise WatermarkInputError(f"proxy windows must be (N, {self.window}), got {tuple(windows.shape)}")
        device = next(self.model.parameters()).device
        ids, probs = [], []
        for start in range(0, windows.shape[0], self.batch_size):
            chunk = windows[start : start + self.batch_size].to(device)
            top_ids, top_probs = self._truncate(self._logits(chunk))
            ids.append(top_ids)
            probs.append(top_probs)
        return self._output(ids, probs, self.top_k)

    @torch.inference_mode()
    def along(self, ids: torch.Tensor, positions: torch.Tensor, *, segment: int = 256) -> ProxyOutput:
        """q before each of ``positions`` (all >= window) of a 1-D id sequence, from its own window.

        Equal to ``self(windows)`` (up to float rounding); with a one-layer proxy it is computed in
        overlapping segments of one causal pass each, under a sliding mask ``window`` tokens wide.
        """
        if positions.numel() and int(positions.min()) < self.window:
            raise WatermarkInputError(f"proxy positions must be >= the window ({self.window})")
        if positions.numel() > 1 and not bool((positions[1:] > positions[:-1]).all()):
            raise WatermarkInputError("proxy positions must be strictly increasing")
        if not self.single_pass:
            return self(ids.unfold(0, self.window, 1)[positions - self.window].contiguous())
        w = self.window
        # Position p (p >= w) is predicted from ids[p - w : p]: the last of those is ids[p - 1].
        ends = positions - 1
        starts = torch.arange(0, ids.shape[0], segment)
        rows = [ids[max(0, int(s) - w + 1) : int(s) + segment] for s in starts]
        offsets = [int(s) - max(0, int(s) - w + 1) for s in starts]
        span = max(row.shape[0] for row in rows)
        padded = torch.zeros(len(rows), span, dtype=torch.int64)
        for r, row in enumerate(rows):
            padded[r, : row.shape[0]] = row
        i = torch.arange(span)
        mask = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < w)
        device = next(self.model.parameters()).device
        # Rows of the (segments, span) output that hold each wanted position's last window token.
        seg = ends // segment
        col = ends - seg * segment + torch.tensor(offsets, dtype=torch.int64)[seg]
        out_ids, out_probs = [], []
        per_batch = max(1, self.batch_size // max(1, span // w))
        for start in range(0, len(rows), per_batch):
            stop = min(len(rows), start + per_batch)
            pick = (seg >= start) & (seg < stop)
            if not bool(pick.any()):
                continue
            hidden = self._hidden(padded[start:stop].to(device), mask.to(device))
            chosen = hidden[(seg[pick] - start).to(device), col[pick].to(device)]
            top_ids, top_probs = self._truncate(self._project(chosen))
            out_ids.append(top_ids)
            out_probs.append(top_probs)
        return self._output(out_ids, out_probs, self.top_k)
