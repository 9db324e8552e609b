"""credid's proxy LM: the single sliding-window pass equals per-window recomputation; the cut head."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from safework.watermark.errors import WatermarkInputError
from safework.watermark.proxy import Proxy


def _ids(n: int, vocab: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, vocab, (n,), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("layers", "vocab"), [(1, 0), (1, 1024), (2, 1024)])
def test_along_equals_one_window_per_position(tiny: Any, layers: int, vocab: int) -> None:
    """Segments of 64 with a 7-token window: positions on both sides of every segment border."""
    proxy = Proxy(tiny.model, layers=layers, window=7, top_k=32, vocab=vocab, batch_size=40)
    assert proxy.single_pass == (layers == 1)
    ids = _ids(300, 4096)
    positions = torch.arange(7, 300)
    windows = proxy(ids.unfold(0, 7, 1)[positions - 7].contiguous())
    along = proxy.along(ids, positions, segment=64)
    assert along.top_ids.shape == windows.top_ids.shape == (293, 32)
    assert torch.allclose(along.top_probs, windows.top_probs, atol=1e-5)
    assert torch.allclose(along.rest, windows.rest, atol=1e-5)
    # Ids agree except where two probabilities tie to rounding (their order may swap).
    assert (along.top_ids == windows.top_ids).float().mean() > 0.99
    subset = torch.tensor([7, 63, 64, 70, 71, 128, 299])
    picked = proxy.along(ids, subset, segment=64)
    assert torch.allclose(picked.top_probs, windows.top_probs[subset - 7], atol=1e-5)


def test_cut_head_keeps_the_first_ids_and_normalises_over_them(tiny: Any) -> None:
    proxy = Proxy(tiny.model, layers=1, window=5, top_k=16, vocab=512)
    out = proxy(_ids(40, 512).reshape(8, 5))
    assert proxy.vocab == 512
    assert int(out.top_ids.max()) < 512
    assert torch.allclose(out.top_probs.double().sum(dim=1) + out.rest, torch.ones(8, dtype=torch.float64))
    full = Proxy(tiny.model, layers=1, window=5, top_k=16, vocab=0)
    assert full.vocab == tiny.model.lm_head.weight.shape[0]


def test_bad_proxy_options_and_positions_are_named(tiny: Any) -> None:
    with pytest.raises(WatermarkInputError, match="proxy vocab"):
        Proxy(tiny.model, layers=1, window=5, top_k=16, vocab=8)
    proxy = Proxy(tiny.model, layers=1, window=5, top_k=16)
    ids = _ids(30, 512)
    with pytest.raises(WatermarkInputError, match=">= the window"):
        proxy.along(ids, torch.tensor([3, 9]))
    with pytest.raises(WatermarkInputError, match="strictly increasing"):
        proxy.along(ids, torch.tensor([9, 9]))
