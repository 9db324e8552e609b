"""The proxy LM of credid: a cheap next-token distribution that generator and detector both recompute.

CredID defines each green list by probability mass under a proxy distribution q over the last ``window``
generated tokens only, so the detector can recompute q from the text alone. The proxy here is the generator
itself, cut to its first ``layers`` decoder layers (weights shared, nothing copied), which keeps its
distribution close to the model's while costing a fraction of a step; ``layers=0`` (or "full") keeps all.

q is truncated to its ``top_k`` most likely tokens; the remaining mass is spread evenly along the keyed
permutation order (see ``safework.watermark.kernels``), identically at generation and extraction, so the
green test needs K+1 hashes per permutation instead of a full-vocabulary sort.
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
        self, model: PreTrainedModel, *, layers: int, window: int, top_k: int, batch_size: int = 256
    ):
        if window < 1:
            raise WatermarkInputError(f"proxy window must be >= 1 token, got {window}")
        if top_k < 1:
            raise WatermarkInputError(f"proxy top_k must be >= 1, got {top_k}")
        self.model = truncated_model(model, layers)
        self.window = window
        self.top_k = top_k
        self.batch_size = batch_size

    @torch.inference_mode()
    def __call__(self, windows: torch.Tensor) -> ProxyOutput:
        """Distributions after each (N, window) row of ids."""
        if windows.dim() != 2 or windows.shape[1] != self.window:
            raise WatermarkInputError(f"proxy windows must be (N, {self.window}), got {tuple(windows.shape)}")
        device = next(self.model.parameters()).device
        ids, probs = [], []
        for start in range(0, windows.shape[0], self.batch_size):
            chunk = windows[start : start + self.batch_size].to(device)
            logits = self.model(input_ids=chunk, use_cache=False, logits_to_keep=1).logits[:, -1, :]
            q = torch.softmax(logits.float(), dim=-1)
            k = min(self.top_k, q.shape[-1])
            top = torch.topk(q, k, dim=-1)
            ids.append(top.indices.to(torch.int64))
            probs.append(top.values.to(torch.float32))
        if not ids:
            empty_ids = torch.empty(0, self.top_k, dtype=torch.int64)
            return ProxyOutput(empty_ids, torch.empty(0, self.top_k), torch.empty(0, dtype=torch.float64))
        top_ids = torch.cat(ids).cpu().contiguous()
        top_probs = torch.cat(probs).cpu().contiguous()
        rest = (1.0 - top_probs.to(torch.float64).sum(dim=1)).clamp(min=0.0)
        return ProxyOutput(top_ids, top_probs, rest.contiguous())
