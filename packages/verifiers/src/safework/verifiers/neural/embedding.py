"""Text embeddings from the frozen MiniLM backbone, truncated for speed and cached on disk for training.

WHY truncation: on 2 CPU cores the encoder runs at ~2k tokens/s, so a 256-token response costs ~0.1 s.
Whether a response refuses, warns or complies shows in its opening, so prompts and responses are cut at
:data:`PROMPT_TOKENS` / :data:`RESPONSE_TOKENS` tokens (most prompts are shorter anyway). The head
is trained and served on the same truncation. Texts are encoded in length-sorted batches (little
padding); results do not depend on the batch (padding is masked).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

PROMPT_TOKENS = 32
RESPONSE_TOKENS = 40
ENCODER_ID = "all-MiniLM-L6-v2"


def _encoder(max_tokens: int) -> Any:
    from safework.core.models import load_sentence_encoder

    return replace(load_sentence_encoder(), max_length=max_tokens, batch_size=64)


def embed(texts: Sequence[str], max_tokens: int) -> Any:
    """(N, 384) unit embeddings of ``texts`` (no disk cache: the serving path)."""
    import torch

    if not texts:
        return torch.zeros((0, 384), dtype=torch.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors = _encoder(max_tokens).encode([texts[i] for i in order])
    out = torch.empty_like(vectors)
    out[torch.tensor(order)] = vectors
    return out


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


class EmbeddingCache:
    """A disk cache ``sha1(text) → embedding`` so each distinct text is encoded once across trainings."""

    def __init__(self, folder: Path, max_tokens: int) -> None:
        self.path = folder / f"{ENCODER_ID}-t{max_tokens}.pt"
        self.max_tokens = max_tokens
        self.vectors: dict[str, Any] = {}
        if self.path.exists():
            import torch

            stored = torch.load(self.path, map_location="cpu", weights_only=True)
            self.vectors = dict(zip(stored["keys"], stored["vectors"], strict=True))

    def lookup(self, texts: Sequence[str], on_progress: Any = None) -> Any:
        """Embeddings of ``texts`` in order, encoding (and remembering) only the unseen distinct ones."""
        import torch

        keys = [_key(t) for t in texts]
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self.vectors:
                missing.setdefault(key, text)
        todo = sorted(missing.items(), key=lambda kv: len(kv[1]))
        chunk = 256
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            vectors = _encoder(self.max_tokens).encode([text for _, text in part])
            for (key, _), vector in zip(part, vectors, strict=True):
                self.vectors[key] = vector.clone()
            if on_progress is not None:
                on_progress(len(part), len(todo))
        if missing:
            self.save()
        if not keys:
            return torch.zeros((0, 384), dtype=torch.float32)
        return torch.stack([self.vectors[k] for k in keys])

    def save(self) -> None:
        import torch

        keys = sorted(self.vectors)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        torch.save({"keys": keys, "vectors": torch.stack([self.vectors[k] for k in keys])}, tmp)
        os.replace(tmp, self.path)
