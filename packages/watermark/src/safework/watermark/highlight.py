"""Glue between a scheme's per-token hits and the HTML view: which tokens carried the decoded payload."""

from __future__ import annotations

from pathlib import Path

import torch

from safework.watermark.decoder import Extraction
from safework.watermark.engine import Watermarker
from safework.watermark.view import render_html


def token_status(watermarker: Watermarker, ids: torch.Tensor, symbols: list[int]) -> list[str]:
    """Per token: "hit" (green for the decoded symbols), "miss", or "skipped" (warm-up, repeat, no signal)."""
    scored, hits = watermarker.scheme.position_hits(ids, symbols)
    return [
        "skipped" if not s else ("hit" if h else "miss")
        for s, h in zip(scored.tolist(), hits.tolist(), strict=True)
    ]


def write_view(watermarker: Watermarker, ids: torch.Tensor, result: Extraction, out: Path) -> Path:
    """Write the coloured-token HTML of one text and return its path."""
    tokenizer = watermarker.loaded.tokenizer
    tokens = [str(tokenizer.decode([i])) for i in ids.tolist()]
    status = token_status(watermarker, ids, result.symbols)
    summary = {
        "scheme": watermarker.scheme.name,
        "payload": None if result.payload is None else result.payload.to_hex(),
        "p-value": f"{result.p_value:.3g}",
        "z": f"{result.z:.2f}",
        "scored tokens": result.scored_tokens,
        "hits": status.count("hit"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        render_html(tokens, status, f"safework watermark: {watermarker.scheme.name}", summary),
        encoding="utf-8",
    )
    return out
