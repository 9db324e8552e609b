"""The trainable part of a neural verifier: pair features over pooled embeddings → a small MLP → logits.

Features for (prompt p, text t), each embedding a pooled view from :mod:`embedding`:
``[p.first, p.mean, t.first, t.mean, t.max, p.mean⊙t.mean, |p.mean−t.mean|, words(p), words(t), t is blank]``.

- the prompt views carry what was asked (harmful, benign, a jailbreak wrapper);
- the text's opening window carries refusal / warning style, its mean the content of the whole answer, its
  max a single operational passage inside a long one;
- the product and difference let a shallow head see whether the text engages with the prompt (off-topic);
- ``words`` are hashed word and word-pair counts (log-scaled, unit length) of the first
  :data:`LEXICAL_WORDS` words: MiniLM's mean-pooled vectors are topical, and the words that separate doing
  from declining ("mix", "dose", "step", "I won't") are lexical. On realistic held-out text they lifted
  balanced accuracy over the three acceptance groups from 0.81 to 0.85;
- blank marks an empty answer (a truncated rollout, an empty policy).

There is deliberately no length feature, and every block is normalised, so a label must follow from what
is said, not from how much (the previous head read only 40 tokens plus log-length, and length decided too
many labels).
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

from safework.verifiers.neural.embedding import EMBED_DIM

LEXICAL_DIM = 2048
LEXICAL_WORDS = 600
FEATURE_DIM = 7 * EMBED_DIM + 2 * LEXICAL_DIM + 1
HIDDEN = 256
_WORD = re.compile(r"[a-z']+")


def lexical_features(texts: Sequence[str]) -> Any:
    """(N, LEXICAL_DIM) hashed word and word-pair counts, log-scaled, unit length (CRC32: stable anywhere)."""
    import torch

    out = torch.zeros((len(texts), LEXICAL_DIM), dtype=torch.float32)
    for row, text in enumerate(texts):
        words = _WORD.findall(text.lower())[:LEXICAL_WORDS]
        grams = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
        for bucket, count in Counter(zlib.crc32(g.encode()) % LEXICAL_DIM for g in grams).items():
            out[row, bucket] = 1.0 + math.log(count)
    return torch.nn.functional.normalize(out, dim=-1)


def pair_features(prompt_views: Any, text_views: Any, prompts: Sequence[str], texts: Sequence[str]) -> Any:
    """(N, FEATURE_DIM) features from (N, 3, 384) prompt and text views and the raw prompts and texts."""
    import torch

    p_first, p_mean = prompt_views[:, 0], prompt_views[:, 1]
    t_first, t_mean, t_max = text_views[:, 0], text_views[:, 1], text_views[:, 2]
    blank = torch.tensor([[float(not t.strip())] for t in texts], dtype=torch.float32).reshape(-1, 1)
    return torch.cat(
        [
            p_first,
            p_mean,
            t_first,
            t_mean,
            t_max,
            p_mean * t_mean,
            (p_mean - t_mean).abs(),
            lexical_features(prompts),
            lexical_features(texts),
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
