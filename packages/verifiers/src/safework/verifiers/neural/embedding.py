"""Whole-text embeddings from the frozen MiniLM backbone: chunked, pooled, cached on disk for training.

WHY chunks: MiniLM reads at most 512 tokens and its mean-pooled embedding of a long text blurs the parts
that decide a safety label (an opening refusal, a warning, one operational step in the middle). A text is
cut into windows of :data:`CHUNK_TOKENS` tokens, up to :data:`MAX_CHUNKS` (512 tokens, so a whole
typical answer is read), each window is embedded on its own, and the windows are pooled three ways:

- ``first`` — the opening window, where refusals and warnings usually sit;
- ``mean`` — the average over windows, length-neutral: repeating or padding an answer barely moves it;
- ``max`` — the per-dimension maximum over windows, so one harmful window in a long benign text shows;
- ``lead`` — the opening sentence alone (at most :data:`LEAD_WORDS` words): whether an answer begins by
  declining decides between a refusal that goes on to list safe alternatives and compliance, and inside a
  128-token window that sentence is outweighed by the list after it.

Prompts use the first two views over up to :data:`PROMPT_CHUNKS` windows. On 2 CPU cores the encoder reads
about 6-7k tokens/s, so a 300-token answer costs ~50 ms; training embeds each distinct window once and keeps
it in an on-disk cache shared by every head and every retraining.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ENCODER_ID = "all-MiniLM-L6-v2"
EMBED_DIM = 384
CHUNK_TOKENS = 128  # + [CLS] and [SEP] per window
MAX_CHUNKS = 4  # 512 tokens of an answer or of the reasoning
PROMPT_CHUNKS = 2  # 256 tokens of a prompt (long jailbreak preambles are cut)
VIEWS = ("first", "mean", "max", "lead")
LEAD_WORDS = 32
_CHARS_PER_TOKEN_CAP = 12  # texts are cut at this many characters per readable token before tokenising
_BATCH = 64


_LEAD_END = re.compile(r"(?<=[.!?])\s+|\n+")


def lead_sentence(text: str) -> str:
    """The first sentence (or line) of ``text``, at most :data:`LEAD_WORDS` words."""
    first = _LEAD_END.split(text.strip(), maxsplit=1)[0]
    return " ".join(first.split()[:LEAD_WORDS])


def _split_ids(tokenizer: Any, texts: Sequence[str], max_chunks: int) -> list[list[list[int]]]:
    """Token windows of each text (an empty text is one empty window), then its lead sentence's window."""
    limit = max_chunks * CHUNK_TOKENS
    cut = [t[: limit * _CHARS_PER_TOKEN_CAP] for t in texts]
    encoded = tokenizer(cut, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    leads = tokenizer(
        [lead_sentence(t[: CHUNK_TOKENS * _CHARS_PER_TOKEN_CAP]) for t in texts],
        add_special_tokens=False,
        truncation=False,
        verbose=False,
    )["input_ids"]
    windows = []
    for ids, lead in zip(encoded, leads, strict=True):
        ids = ids[:limit]
        chunks = [ids[i : i + CHUNK_TOKENS] for i in range(0, len(ids), CHUNK_TOKENS)] or [[]]
        windows.append([*chunks, lead[:CHUNK_TOKENS]])
    return windows


def _encode_windows(encoder: Any, windows: Sequence[list[int]]) -> Any:
    """(M, 384) unit embeddings of token windows, batched by length (padding is masked, order kept)."""
    import torch

    tokenizer, model = encoder.tokenizer, encoder.model
    cls_id, sep_id, pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id or 0
    order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
    out = torch.empty((len(windows), EMBED_DIM), dtype=torch.float32)
    with torch.inference_mode():
        for start in range(0, len(order), _BATCH):
            rows = order[start : start + _BATCH]
            width = max(len(windows[i]) for i in rows) + 2
            ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):
                seq = [cls_id, *windows[i], sep_id]
                ids[r, : len(seq)] = torch.tensor(seq)
                mask[r, : len(seq)] = 1
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
            out[torch.tensor(rows)] = torch.nn.functional.normalize(pooled, dim=-1).float()
    return out


def _pool(block: Any) -> Any:
    """(4, 384) views of one text from its (W + 1, 384) window embeddings, the lead sentence's last."""
    import torch

    windows, lead = block[:-1], block[-1]
    mean = torch.nn.functional.normalize(windows.mean(0), dim=-1)
    return torch.stack([windows[0], mean, windows.max(0).values, lead])


def embed_texts(texts: Sequence[str], max_chunks: int) -> Any:
    """(N, 4, 384) pooled views (first, mean, max, lead) of each text, with no disk cache (the serving path).

    Identical windows are encoded once per call: the eight samples of a GRPO group share one prompt."""
    return EmbeddingCache(None).lookup(texts, max_chunks)


def _key(window: list[int]) -> str:
    return hashlib.sha1(b"".join(i.to_bytes(4, "little") for i in window)).hexdigest()


class EmbeddingCache:
    """A disk cache ``sha1(window token ids) → window embedding``, shared by prompts, answers and heads.

    Caching windows rather than texts makes label-preserving augmentations cheap: an answer with a
    precaution appended shares every window but its last with the plain answer."""

    def __init__(self, folder: Path | None) -> None:
        """``folder`` None keeps the windows in memory only (nothing read or written)."""
        self.path = None if folder is None else folder / f"{ENCODER_ID}-w{CHUNK_TOKENS}.pt"
        self.vectors: dict[str, Any] = {}
        if self.path is not None and self.path.exists():
            import torch

            stored = torch.load(self.path, map_location="cpu", weights_only=True)
            self.vectors = dict(zip(stored["keys"], stored["vectors"], strict=True))

    def lookup(
        self, texts: Sequence[str], max_chunks: int, on_progress: Callable[[int, int], None] | None = None
    ) -> Any:
        """Pooled views of ``texts`` in order, encoding (and remembering) only unseen windows."""
        import torch

        from safework.core.models import load_sentence_encoder

        if not texts:
            return torch.zeros((0, len(VIEWS), EMBED_DIM), dtype=torch.float32)
        encoder = load_sentence_encoder()
        windows = _split_ids(encoder.tokenizer, texts, max_chunks)
        keys = [[_key(w) for w in per_text] for per_text in windows]
        missing: dict[str, list[int]] = {}
        for per_text, per_keys in zip(windows, keys, strict=True):
            for window, key in zip(per_text, per_keys, strict=True):
                if key not in self.vectors:
                    missing.setdefault(key, window)
        todo = list(missing.items())
        step = 1024
        for start in range(0, len(todo), step):
            part = todo[start : start + step]
            for (key, _), vector in zip(part, _encode_windows(encoder, [w for _, w in part]), strict=True):
                self.vectors[key] = vector.clone()
            if on_progress is not None:
                on_progress(len(part), len(todo))
        if todo and self.path is not None:
            self.save()
        return torch.stack([_pool(torch.stack([self.vectors[k] for k in per_keys])) for per_keys in keys])

    def save(self) -> None:
        import torch

        assert self.path is not None, "an in-memory cache has nowhere to save"
        keys = sorted(self.vectors)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        torch.save({"keys": keys, "vectors": torch.stack([self.vectors[k] for k in keys])}, tmp)
        os.replace(tmp, self.path)
