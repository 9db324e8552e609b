"""safework.core.models.generation: the one batched generation loop (tiny models; one slow real check)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import torch

from safework.core.errors import ConfigError
from safework.core.models import Decoding, chat_result, generate_chat, tiny_loaded
from safework.core.models.generation import filter_scores, render_prompt

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from safework.core.models import LoadedModel

PROMPTS = ["w1 w2 w3", "w4", "w5 w6 w7 w8 w9 w10", "w11 w12", "w13 w14 w15 w16"]


@pytest.fixture
def lively(word_tokenizer: PreTrainedTokenizerBase) -> LoadedModel:
    """A tiny model with its weight matrices scaled up, so greedy continuations vary instead of repeating
    the prompt's last token (what a fresh random init with tied embeddings does)."""
    loaded = tiny_loaded(word_tokenizer, seed=7)
    with torch.no_grad():
        for parameter in loaded.model.parameters():
            if parameter.dim() > 1:
                parameter.mul_(20.0)
    return loaded


def _reference_greedy(loaded: LoadedModel, prompt: str, max_new_tokens: int) -> list[int]:
    """transformers' own generate, one prompt at a time, as the ground truth."""
    encoded = loaded.tokenizer(prompt, return_tensors="pt")
    output = loaded.model.generate(  # type: ignore[operator]
        **encoded, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=loaded.tokenizer.pad_token_id
    )
    return [int(t) for t in output[0, encoded["input_ids"].shape[1] :].tolist()]


def test_batched_greedy_matches_transformers_generate_row_by_row(lively: LoadedModel) -> None:
    results = generate_chat(lively, PROMPTS, Decoding(max_new_tokens=10), batch_size=3)
    eos = lively.tokenizer.eos_token_id
    assert any(len(set(r.token_ids)) > 2 for r in results)  # the check is not vacuous
    for prompt, result in zip(PROMPTS, results, strict=True):
        reference = _reference_greedy(lively, prompt, 10)
        if eos in reference:
            reference = reference[: reference.index(eos)]
        assert list(result.token_ids) == reference
        assert result.prompt == prompt and result.prompt_tokens == len(prompt.split())


def test_padding_side_and_pad_token_are_restored(lively: LoadedModel) -> None:
    tokenizer = lively.tokenizer
    tokenizer.padding_side = "right"
    generate_chat(lively, PROMPTS[:2], Decoding(max_new_tokens=2))
    assert tokenizer.padding_side == "right" and tokenizer.pad_token == "</s>"


class _ForceEos:
    """Forces end-of-sequence on row 0 at step ``at`` and records the shapes it was called with."""

    def __init__(self, eos: int, at: int) -> None:
        self.eos, self.at, self.calls = eos, at, 0
        self.shapes: list[tuple[int, int]] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self.shapes.append((int(input_ids.shape[0]), int(input_ids.shape[1])))
        if self.calls == self.at:
            scores[0] = float("-inf")
            scores[0, self.eos] = 0.0
        self.calls += 1
        return scores


def test_rows_stop_on_their_own_with_finish_reasons(lively: LoadedModel) -> None:
    eos = int(lively.tokenizer.eos_token_id)
    processor = _ForceEos(eos, at=2)
    prompts = ["w1 w2", "w3 w4"]  # equal lengths: batch row 0 is prompt 0
    results = generate_chat(
        lively, prompts, Decoding(max_new_tokens=6), batch_size=2, logits_processors=[processor]
    )
    assert (
        results[0].finish_reason == "stop" and len(results[0].token_ids) == 2 and results[0].new_tokens == 3
    )
    assert (
        results[1].finish_reason == "length" and len(results[1].token_ids) == 6 and results[1].new_tokens == 6
    )
    # processors see every row (prompt + tokens so far) at every step: the batch keeps its shape
    assert processor.shapes == [(2, 2 + step) for step in range(6)]


def test_sampling_depends_on_the_prompt_seed_not_on_the_batch(lively: LoadedModel) -> None:
    decoding = Decoding(max_new_tokens=8, temperature=1.0, top_p=0.9, top_k=20)
    seeds = [11, 12, 13, 14, 15]
    together = generate_chat(lively, PROMPTS, decoding, seeds=seeds, batch_size=5)
    alone = [generate_chat(lively, [p], decoding, seeds=[s])[0] for p, s in zip(PROMPTS, seeds, strict=True)]
    reversed_order = generate_chat(lively, PROMPTS[::-1], decoding, seeds=seeds[::-1], batch_size=2)[::-1]
    assert (
        [r.token_ids for r in together]
        == [r.token_ids for r in alone]
        == [r.token_ids for r in reversed_order]
    )
    other = generate_chat(lively, PROMPTS, decoding, seeds=[s + 100 for s in seeds], batch_size=5)
    assert [r.token_ids for r in other] != [r.token_ids for r in together]


class _Record:
    """Records the scores it is called with (a copy) and, through ``start_batch``, each batch's prompts."""

    def __init__(self) -> None:
        self.scores: list[torch.Tensor] = []
        self.batches: list[list[int]] = []

    def start_batch(self, rows: list[int]) -> None:
        self.batches.append(list(rows))

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self.scores.append(scores.clone())
        return scores


def test_filtered_processors_see_scores_after_temperature_and_top_p(lively: LoadedModel) -> None:
    decoding = Decoding(max_new_tokens=5, temperature=0.7, top_p=0.5, top_k=30, seed=0)
    raw, filtered = _Record(), _Record()
    generate_chat(lively, PROMPTS[:2], decoding, logits_processors=[raw], filtered_processors=[filtered])
    assert len(raw.scores) == len(filtered.scores) == 5
    for before, after in zip(raw.scores, filtered.scores, strict=True):
        expected = filter_scores(before, decoding)
        assert torch.equal(after, expected)
        assert bool(torch.isinf(after).any()) and not bool(torch.isinf(before).any())
    # the same seeds with no processor at all draw the same tokens: recording changes nothing
    plain = generate_chat(lively, PROMPTS[:2], decoding)
    again = generate_chat(lively, PROMPTS[:2], decoding, filtered_processors=[_Record()])
    assert [r.token_ids for r in plain] == [r.token_ids for r in again]


def test_processors_learn_which_prompts_each_batch_holds(lively: LoadedModel) -> None:
    recorder = _Record()
    generate_chat(lively, PROMPTS, Decoding(max_new_tokens=2), batch_size=2, filtered_processors=[recorder])
    # batches are regrouped by prompt length, shortest first; every prompt is announced exactly once
    assert sorted(i for batch in recorder.batches for i in batch) == list(range(len(PROMPTS)))
    assert recorder.batches[0] == [1, 3] and [len(b) for b in recorder.batches] == [2, 2, 1]


def test_decoding_seed_gives_each_prompt_its_own_stream(lively: LoadedModel) -> None:
    decoding = Decoding(max_new_tokens=6, temperature=1.0, seed=3)
    first = generate_chat(lively, PROMPTS, decoding, batch_size=2)
    second = generate_chat(lively, PROMPTS, decoding, batch_size=5)
    assert [r.token_ids for r in first] == [r.token_ids for r in second]


def test_chat_result_is_a_one_row_call(lively: LoadedModel) -> None:
    result = chat_result(lively, "w1 w2 w3", max_new_tokens=7)
    (row,) = generate_chat(lively, ["w1 w2 w3"], Decoding(max_new_tokens=7))
    assert result.text == row.text.strip() and result.new_tokens == row.new_tokens
    assert result.finish_reason == row.finish_reason


def test_render_prompt_without_a_template_prefixes_the_system_prompt(
    word_tokenizer: PreTrainedTokenizerBase,
) -> None:
    assert render_prompt(word_tokenizer, "w1") == "w1"
    assert render_prompt(word_tokenizer, "w1", system="w2") == "w2\n\nw1"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prompts": ["w1", " "]}, "prompt 1 is empty"),
        ({"batch_size": 0}, "batch_size"),
        ({"seeds": [1]}, "one seed per prompt"),
    ],
)
def test_generate_chat_rejects_bad_arguments(lively: LoadedModel, kwargs: dict, match: str) -> None:
    arguments: dict = {"prompts": ["w1", "w2"], **kwargs}
    with pytest.raises(ConfigError, match=match):
        generate_chat(lively, arguments.pop("prompts"), **arguments)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"temperature": -1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_k": -1}, "top_k"),
    ],
)
def test_decoding_validates_itself(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Decoding(**kwargs)


@pytest.mark.slow
def test_embedded_model_batched_answers_match_one_by_one(embedded_lm: LoadedModel) -> None:
    prompts = ["What is the capital of France?", "Name a primary colour."]
    batched = generate_chat(embedded_lm, prompts, Decoding(max_new_tokens=10), batch_size=2)
    single = [chat_result(embedded_lm, p, max_new_tokens=10) for p in prompts]
    assert [b.text.strip() for b in batched] == [s.text for s in single]
    assert "Paris" in batched[0].text
    assert all(b.finish_reason in ("stop", "length") for b in batched)
