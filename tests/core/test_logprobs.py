"""safework.core.models.logprobs: the teacher-forced scoring pass (tiny random-init models)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import torch

from safework.core.errors import ConfigError
from safework.core.models import Decoding, generate_chat, tiny_causal_lm, tiny_loaded
from safework.core.models.logprobs import token_logprobs

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

ROWS = [([5, 6, 7], [8, 9]), ([10], [11, 12, 13, 14]), ([15, 16], [])]


def _one_row(
    model: torch.nn.Module, context: list[int], target: list[int], temperature: float
) -> list[float]:
    """The ground truth: an unpadded forward pass over one row, log-softmax, pick the targets."""
    ids = torch.tensor([context + target])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float() / temperature
    logp = torch.log_softmax(logits, dim=-1)
    return [float(logp[len(context) - 1 + j, t]) for j, t in enumerate(target)]


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_padded_batch_matches_one_row_at_a_time(temperature: float) -> None:
    model = tiny_causal_lm(vocab_size=64, seed=3)
    with torch.no_grad():
        scored = token_logprobs(model, ROWS, pad_id=0, temperature=temperature, with_entropy=True)
    keep = max(len(t) for _, t in ROWS)
    assert scored.logprobs.shape == (3, keep) and scored.mask.shape == (3, keep)
    for r, (context, target) in enumerate(ROWS):
        n = len(target)
        assert scored.mask[r].tolist() == [0.0] * (keep - n) + [1.0] * n
        got = scored.logprobs[r, keep - n :].tolist()
        assert got == pytest.approx(_one_row(model, list(context), list(target), temperature), abs=1e-5)
        assert scored.logprobs[r, : keep - n].abs().sum() == 0  # padding columns hold exact zeros
    assert scored.entropy is not None
    assert bool((scored.entropy[scored.mask > 0] > 0).all())
    assert float(scored.entropy.max()) <= float(torch.log(torch.tensor(64.0))) + 1e-4  # at most uniform


def test_gradients_flow_to_the_parameters() -> None:
    model = tiny_causal_lm(vocab_size=64, seed=3)
    scored = token_logprobs(model, ROWS[:2], pad_id=0)
    scored.logprobs.sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)


def test_bad_rows_are_refused() -> None:
    model = tiny_causal_lm(vocab_size=64)
    with pytest.raises(ConfigError, match="at least one"):
        token_logprobs(model, [], pad_id=0)
    with pytest.raises(ConfigError, match="empty context"):
        token_logprobs(model, [([], [1, 2])], pad_id=0)
    with pytest.raises(ConfigError, match="temperature"):
        token_logprobs(model, ROWS, pad_id=0, temperature=0)


def test_generation_reports_the_stop_token(word_tokenizer: PreTrainedTokenizerBase) -> None:
    """A row that ended on an end-of-sequence id names it (RL trains on the stop token)."""
    loaded = tiny_loaded(word_tokenizer, seed=1)
    eos = int(loaded.tokenizer.eos_token_id)
    bias = torch.zeros(loaded.model.config.vocab_size)
    bias[eos] = 1e4  # the end-of-sequence token wins every step

    def favour_eos(_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return scores + bias

    out = generate_chat(loaded, ["w1 w2"], Decoding(max_new_tokens=4), logits_processors=[favour_eos])
    assert out[0].finish_reason == "stop" and out[0].stop_token == eos and out[0].token_ids == ()
    bias[eos] = -1e4  # now it never wins: the row is cut at the budget and names no stop token
    cut = generate_chat(loaded, ["w1 w2"], Decoding(max_new_tokens=2), logits_processors=[favour_eos])
    assert cut[0].finish_reason == "length" and cut[0].stop_token is None and len(cut[0].token_ids) == 2
