"""Where the watermark bias goes relative to the sampler (temperature, top-k, top-p), in every engine.

A sampler divides the logits by the temperature T and cuts the tail (top-k, then the nucleus) before it
draws. Three placements of a green-list bias δ:

* ``"before-filters"``: δ on the raw logits of every green token, as any processor passed as transformers'
  ``logits_processor=`` and any vLLM V1 plugin. T rescales it to δ/T and the nucleus is cut from the
  biased distribution, so green tokens from anywhere in the tail can be pulled in.
* ``"after-filters"``: δ after temperature and truncation, where transformers' own ``watermarking_config``
  processors (KGW, SynthID) sit. The text never leaves the unwatermarked nucleus, but a small model's
  nucleus at T 0.7 / top-p 0.9 is mostly one or two tokens, leaving the bias almost nothing to choose
  between: credid's 16-bit payloads then rarely come back (benchmarks/RESULTS.md).
* ``"nucleus"`` (default): δ on the raw logits (T still scales it to δ/T, the push a sharper distribution
  needs) but only for green tokens inside the ``NUCLEUS`` (98 %) nucleus of the tempered, top-k-cut,
  unbiased distribution, and never for a token whose (context, token) pair the text already holds.
  Extraction counts such a pair once, so biasing towards it adds distortion but no evidence; at low
  temperature, where a small model loops, this is what keeps enough positions scored.

Extraction sees text only, never the sampler or the placement: the sampler's settings are needed at
embedding only. ``"nucleus"`` works from a hook that runs before the sampler, so the transformers path and
the vLLM V1 plugin (which vLLM runs on the raw logits, before penalties, temperature and top-k/top-p, with
no hook after them) apply the same rule, each request with its own temperature and top-k.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import torch

from safework.core.types import WatermarkPayload
from safework.watermark.errors import WatermarkInputError

if TYPE_CHECKING:
    from safework.watermark.engine import Watermarker

Placement = Literal["nucleus", "before-filters", "after-filters"]
PLACEMENTS: tuple[str, ...] = get_args(Placement)
DEFAULT_PLACEMENT: Placement = "nucleus"
NUCLEUS = 0.98  # the bias never lifts a token from the least likely 2 % of the tempered distribution
GREEDY_EPS = 1e-5  # vLLM treats a temperature below this as greedy


def check_placement(value: str) -> Placement:
    if value not in PLACEMENTS:
        raise WatermarkInputError(f"placement must be one of {', '.join(PLACEMENTS)}, got {value!r}")
    return value  # type: ignore[return-value]


@dataclass(frozen=True)
class RowSampling:
    """One row's sampler settings as the engine applies them (top_k <= 0: no top-k cut), and ``mass``:
    the share of the tempered distribution whose green tokens the ``"nucleus"`` placement may lift."""

    temperature: float = 1.0
    top_k: int = 0
    mass: float = NUCLEUS


def nucleus_mask(logits: torch.Tensor, sampling: RowSampling) -> torch.Tensor:
    """(V,) bool: the smallest set of most likely tokens holding ``mass`` of softmax(logits / T), after
    the top-k cut (greedy rows use T = 1)."""
    return nucleus_masks(logits.unsqueeze(0), [sampling])[0]


def nucleus_masks(logits: torch.Tensor, sampling: Sequence[RowSampling]) -> torch.Tensor:
    """(R, V) bool: :func:`nucleus_mask` of every row, with one sort for the whole block."""
    temperatures = [1.0 if s.temperature < GREEDY_EPS else s.temperature for s in sampling]
    scores = logits.float() / torch.tensor(temperatures, device=logits.device).unsqueeze(1)
    for row, settings in enumerate(sampling):
        if 0 < settings.top_k < scores.shape[-1]:
            kth = torch.topk(scores[row], settings.top_k).values[-1]
            scores[row] = scores[row].masked_fill(scores[row] < kth, float("-inf"))
    ordered, order = torch.sort(scores, descending=True, dim=-1)
    probs = ordered.softmax(dim=-1)
    before = probs.cumsum(dim=-1) - probs  # mass of the tokens ranked above each one
    mass = torch.tensor([s.mass for s in sampling], device=logits.device).unsqueeze(1)
    return torch.zeros_like(before, dtype=torch.bool).scatter_(-1, order, before < mass)


def used_tokens(generated: Sequence[int], width: int) -> list[int]:
    """Tokens that already followed the current ``width``-token context in ``generated``."""
    if len(generated) <= width:
        return []
    ids = torch.tensor(list(generated), dtype=torch.int64)
    context = ids[-width:]
    windows = ids[:-1].unfold(0, width, 1)  # windows[i] = ids[i : i + width], followed by ids[i + width]
    hits = (windows == context).all(dim=1).nonzero().flatten() + width
    return ids[hits].tolist()


def bias_in_nucleus_(
    watermarker: Watermarker,
    logits: torch.Tensor,
    generated: Sequence[Sequence[int]],
    payloads: Sequence[WatermarkPayload | None],
    sampling: Sequence[RowSampling | None],
) -> None:
    """The ``"nucleus"`` placement, from a hook on the raw logits (B, V), in place.

    Rows without a payload are untouched; rows whose ``sampling`` is None get no nucleus bound (the
    engine's settings are unknown) but still skip used pairs.
    """
    if len(sampling) != logits.shape[0] or len(payloads) != logits.shape[0]:
        raise WatermarkInputError(
            f"{logits.shape[0]} logits rows, {len(payloads)} payloads and {len(sampling)} sampling settings "
            "must agree"
        )
    rows = [r for r, p in enumerate(payloads) if p is not None]
    if not rows:
        return
    before = logits[rows].clone()
    watermarker.bias_(logits, generated, payloads)
    width = watermarker.scheme.context_width
    bounded = [slot for slot, row in enumerate(rows) if sampling[row] is not None]
    keep_all = torch.ones(before.shape, dtype=torch.bool, device=logits.device)
    if bounded:
        settings = [sampling[rows[slot]] for slot in bounded]
        keep_all[bounded] = nucleus_masks(before[bounded], settings)  # type: ignore[arg-type]
    for slot, row in enumerate(rows):
        keep = keep_all[slot]
        used = used_tokens(generated[row], width)
        if used:
            keep[torch.tensor(used, dtype=torch.int64, device=logits.device)] = False
        logits[row] = torch.where(keep, logits[row], before[slot])
