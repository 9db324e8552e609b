"""The trainable part of a neural verifier: pair features over pooled embeddings → a small MLP → logits.

Features for (prompt p, text t), each embedding a pooled view from :mod:`embedding`:
``[p.first, p.mean, t.first, t.mean, t.max, t.lead, p.mean⊙t.mean, |p.mean−t.mean|, cues(p, t), t is blank]``.

- the prompt views carry what was asked (harmful, benign, a jailbreak wrapper);
- the text's opening window carries refusal / warning style, its mean the content of the whole answer, its
  max a single operational passage inside a long one, its lead sentence whether it opens by declining (a
  refusal followed by a list of safe alternatives reads like compliance in the 128-token window);
- the product and difference let a shallow head see whether the text engages with the prompt (off-topic);
- ``cues`` are the keyword rules' 0/1 cues (:func:`keyword.flags`: a refusal phrase in the opening, a
  warning phrase, a harmful word in the prompt, a compliance cue such as "step 1"). Alone the rules are
  weak (55 % balanced over the acceptance groups); beside the embeddings they carry the exact phrases;
- blank marks an empty answer (a truncated rollout, an empty policy).

Hashed word and word-pair counts were features until the lead view and the cues came: with those two they
no longer helped on held-out text (85.6 % vs 85.8 % balanced without them, averaged over three prompt
splits) and they made short practical answers and terse reasoning notes read as unsafe (the wasp-nest
answer's reasoning scored P(unsafe) 0.78 with them, 0.05 without).

There is deliberately no length feature, and every block is normalised, so a label must follow from what
is said, not from how much (the previous head read only 40 tokens plus log-length, and length decided too
many labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from safework.verifiers.neural import keyword
from safework.verifiers.neural.embedding import EMBED_DIM

FEATURE_DIM = 8 * EMBED_DIM + len(keyword.FLAGS) + 1
HIDDEN = 256


def pair_features(prompt_views: Any, text_views: Any, prompts: Sequence[str], texts: Sequence[str]) -> Any:
    """(N, FEATURE_DIM) features from (N, 4, 384) prompt and text views and the raw prompts and texts."""
    import torch

    p_first, p_mean = prompt_views[:, 0], prompt_views[:, 1]
    t_first, t_mean, t_max, t_lead = (text_views[:, i] for i in range(4))
    cues = [keyword.flags(p, t) for p, t in zip(prompts, texts, strict=True)]
    blank = torch.tensor([[float(not t.strip())] for t in texts], dtype=torch.float32).reshape(-1, 1)
    return torch.cat(
        [
            p_first,
            p_mean,
            t_first,
            t_mean,
            t_max,
            t_lead,
            p_mean * t_mean,
            (p_mean - t_mean).abs(),
            torch.tensor(cues, dtype=torch.float32).reshape(len(texts), len(keyword.FLAGS)),
            blank,
        ],
        dim=-1,
    )


def make_head(num_labels: int, dropout: float = 0.1) -> Any:
    """The MLP head (created under the caller's torch seed, so initialisation is reproducible)."""
    from torch import nn

    return nn.Sequential(
        nn.Linear(FEATURE_DIM, HIDDEN),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Linear(HIDDEN, num_labels),
    )
