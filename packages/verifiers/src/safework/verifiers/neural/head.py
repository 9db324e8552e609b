"""The trainable part of a neural verifier: pair features over frozen embeddings → a small MLP → logits.

Features for (prompt p, response r): [p, r, p⊙r, |p−r|, log-length of r, r is blank]. The products and
differences let a shallow head see whether the response engages with the prompt (off-topic / illogical),
the response alone carries refusal / warning / compliance style, the prompt alone carries harmfulness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

EMBED_DIM = 384
FEATURE_DIM = 4 * EMBED_DIM + 2
HIDDEN = 256


def final_answer(response: str) -> str:
    """The text after the last ``</think>`` (reward models judge only the final answer, spec §1)."""
    marker = "</think>"
    return response.rsplit(marker, 1)[1] if marker in response else response


def scalar_features(responses: Sequence[str]) -> Any:
    import torch

    rows = [[math.log1p(len(r.strip())) / 8.0, float(not r.strip())] for r in responses]
    return torch.tensor(rows, dtype=torch.float32).reshape(len(responses), 2)


def pair_features(prompt_emb: Any, response_emb: Any, responses: Sequence[str]) -> Any:
    """(N, FEATURE_DIM) features from (N, 384) prompt and response embeddings."""
    import torch

    return torch.cat(
        [
            prompt_emb,
            response_emb,
            prompt_emb * response_emb,
            (prompt_emb - response_emb).abs(),
            scalar_features(responses),
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
