"""Batched chat generation: the one decoding loop every package uses.

Prompts are wrapped in the tokenizer's chat template (optionally under a system turn), left-padded into
batches of similar length and decoded with a KV cache, greedily or by sampling. Rows stop on their own at
an end-of-sequence token; finished rows leave the batch, so a long answer does not make short ones pay.

Sampling draws every row from its own ``torch.Generator`` seeded per prompt, so a sampled answer depends on
the prompt and its seed only, not on which other prompts shared its batch or in what order they came:
evaluations can resume half-done work and get the same texts as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from safework.core.console import progress
from safework.core.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

    from safework.core.models.loader import LoadedModel

FinishReason = Literal["stop", "length"]
# (prompt + generated ids so far, next-token scores) -> scores: the transformers LogitsProcessor shape.
# A processor with per-row state (one payload per prompt) may also define ``start_batch(rows)``: the loop
# calls it before each batch with the input-order indices of the prompts in that batch's rows, since
# batches are regrouped by prompt length.
LogitsProcessor = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


@dataclass(frozen=True)
class Generated:
    """One prompt's continuation (the prompt excluded, end-of-sequence token dropped) and what it cost."""

    prompt: str
    text: str
    token_ids: tuple[int, ...]
    prompt_tokens: int
    finish_reason: FinishReason  # "stop": the model ended its answer; "length": cut at max_new_tokens
    stop_token: int | None = None  # the end-of-sequence id that ended the row (RL trains on it), if any

    @property
    def new_tokens(self) -> int:
        """Generated tokens, counting the end-of-sequence token when the row stopped on one."""
        return len(self.token_ids) + (1 if self.finish_reason == "stop" else 0)


@dataclass(frozen=True)
class Decoding:
    """How to pick tokens. ``temperature`` 0 is greedy; above 0 samples with top-k / top-p filtering.

    ``seed`` makes sampling reproducible: prompt ``i`` of a call samples from a generator seeded with
    ``seed + i`` unless the caller passes its own per-prompt seeds.
    """

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1 (got {self.max_new_tokens})")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0 (got {self.temperature}); use 0 for greedy decoding")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1] (got {self.top_p})")
        if self.top_k < 0:
            raise ConfigError(f"top_k must be >= 0 (got {self.top_k}); 0 keeps every token")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def render_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str, system: str | None = None) -> str:
    """The prompt wrapped in the chat template; plain text for base models that have no template."""
    if not getattr(tokenizer, "chat_template", None):
        return prompt if system is None else f"{system}\n\n{prompt}"
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return str(rendered)


def prompt_ids(tokenizer: PreTrainedTokenizerBase, prompt: str, system: str | None = None) -> list[int]:
    """The token ids :func:`generate_chat` feeds the model for one chat prompt (template, no extra BOS)."""
    text = render_prompt(tokenizer, prompt, system)
    add_special = not getattr(tokenizer, "chat_template", None)  # a template holds its special tokens
    return [int(i) for i in tokenizer(text, add_special_tokens=add_special)["input_ids"]]


def stop_ids(loaded: LoadedModel) -> set[int]:
    """Token ids that end an answer: the tokenizer's EOS plus the model's generation-config EOS ids."""
    ids: set[int] = set()
    config = getattr(loaded.model, "generation_config", None)
    for value in (getattr(config, "eos_token_id", None), loaded.tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(int(v) for v in value)
    return ids


@contextlib.contextmanager
def _left_padding(tokenizer: PreTrainedTokenizerBase) -> Iterator[int]:
    """Left padding (new tokens must follow the prompt directly) and a pad id; both restored afterwards."""
    side, pad = tokenizer.padding_side, tokenizer.pad_token
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise ConfigError(
                "the tokenizer has neither a pad nor an eos token, so prompts cannot be batched; "
                "set tokenizer.pad_token before generating"
            )
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    try:
        yield int(tokenizer.pad_token_id)
    finally:
        tokenizer.padding_side = side
        if tokenizer.pad_token != pad:
            tokenizer.pad_token = pad


def _cache_keyword(model: Any) -> str:
    """transformers 5.25 renamed ``past_key_values`` to ``cache``; older and remote models use the old one."""
    parameters = inspect.signature(model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def filter_scores(scores: torch.Tensor, decoding: Decoding) -> torch.Tensor:
    """Temperature, then top-k, then nucleus (top-p) filtering; at least one token always survives."""
    import torch

    scores = scores / decoding.temperature
    if 0 < decoding.top_k < scores.shape[-1]:
        kth = torch.topk(scores, decoding.top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if decoding.top_p < 1:
        ordered, order = torch.sort(scores, descending=True, dim=-1)
        cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
        drop = cumulative - ordered.softmax(dim=-1) >= decoding.top_p  # mass before this token already >= p
        scores = scores.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return scores


class _Batch:
    """One left-padded batch being decoded; rows leave ``active`` when they finish."""

    def __init__(self, loaded: LoadedModel, texts: list[str], pad_id: int, add_special: bool) -> None:
        self.loaded = loaded
        encoded = loaded.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=add_special)
        self.input_ids = encoded["input_ids"].to(loaded.device)
        self.attention = encoded["attention_mask"].to(loaded.device)
        self.prompt_tokens = [int(n) for n in self.attention.sum(dim=1).tolist()]
        self.pad_id = pad_id
        self.active = list(range(len(texts)))  # batch rows still decoding, in cache order
        self.new: list[list[int]] = [[] for _ in texts]
        self.finish: list[FinishReason] = ["length"] * len(texts)
        self.stop_token: list[int | None] = [None] * len(texts)

    def forward(self, ids: torch.Tensor, positions: torch.Tensor, cache: dict[str, Any]) -> torch.Tensor:
        """Next-token scores of every active row; only the last position's logits are computed."""
        out = self.loaded.model(
            input_ids=ids,
            attention_mask=self.attention,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **cache,
        )
        return out.logits[:, -1, :].float()


def _pick(
    scores: torch.Tensor,
    sequences: torch.Tensor,
    decoding: Decoding,
    generators: list[torch.Generator | None],
    late: Sequence[LogitsProcessor],
) -> list[int]:
    """Next token per row; ``late`` processors see the scores after temperature and top-k/top-p."""
    import torch

    if not decoding.greedy:
        scores = filter_scores(scores, decoding)
    for processor in late:
        scores = processor(sequences, scores)
    if decoding.greedy:
        return [int(i) for i in scores.argmax(dim=-1).tolist()]
    probabilities = scores.softmax(dim=-1)
    return [
        int(torch.multinomial(probabilities[row], 1, generator=generator))
        for row, generator in enumerate(generators)
    ]


def _decode_batch(
    batch: _Batch,
    decoding: Decoding,
    seeds: list[int | None],
    processors: Sequence[LogitsProcessor],
    stops: set[int],
    late: Sequence[LogitsProcessor] = (),
) -> None:
    """Decode until every row stopped or hit max_new_tokens.

    Without logits processors, finished rows are dropped from the batch and its KV cache. Processors may
    keep per-row state (a watermark's payload per row), so with processors the batch keeps its shape and
    finished rows are fed padding whose output is ignored.
    """
    import torch
    from transformers import DynamicCache

    model = batch.loaded.model
    device = batch.loaded.device
    generators: list[torch.Generator | None] = []
    for seed in seeds:
        generator = None
        if seed is not None and not decoding.greedy:
            generator = torch.Generator(device=device)
            generator.manual_seed(seed)
        generators.append(generator)
    prune = not processors and not late
    cache = DynamicCache(config=model.config)
    cache_argument = {_cache_keyword(model): cache}
    positions = (batch.attention.cumsum(dim=-1) - 1).clamp(min=0)  # left padding: count real tokens only
    sequences = batch.input_ids  # full rows (prompt + new tokens), what logits processors see
    scores = batch.forward(batch.input_ids, positions, cache_argument)
    positions = positions[:, -1:]
    done = [False] * len(batch.active)  # per cache row
    for step in range(decoding.max_new_tokens):
        for processor in processors:
            scores = processor(sequences, scores)
        rows_generators = [generators[row] for row in batch.active]
        picked = _pick(scores, sequences, decoding, rows_generators, late)
        for slot, (row, token) in enumerate(zip(batch.active, picked, strict=True)):
            if done[slot]:
                continue
            if token in stops:
                done[slot] = True
                batch.finish[row] = "stop"
                batch.stop_token[row] = token
            else:
                batch.new[row].append(token)
        if all(done) or step == decoding.max_new_tokens - 1:
            return
        next_ids = torch.tensor(
            [[batch.pad_id if d else t] for d, t in zip(done, picked, strict=True)], device=device
        )
        if prune and any(done):
            keep = [slot for slot, d in enumerate(done) if not d]
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            batch.attention = batch.attention[index]
            positions, next_ids = positions[index], next_ids[index]
            batch.active = [batch.active[slot] for slot in keep]
            done = [False] * len(keep)
        elif not prune:
            sequences = torch.cat([sequences, next_ids], dim=1)
        batch.attention = torch.cat([batch.attention, torch.ones_like(next_ids)], dim=1)
        positions = positions + 1
        scores = batch.forward(next_ids, positions, cache_argument)


def generate_chat(
    loaded: LoadedModel,
    prompts: Sequence[str],
    decoding: Decoding | None = None,
    *,
    system: str | None = None,
    template: bool = True,
    batch_size: int = 8,
    seeds: Sequence[int] | None = None,
    logits_processors: Sequence[LogitsProcessor] = (),
    filtered_processors: Sequence[LogitsProcessor] = (),
    on_batch: Callable[[int], None] | None = None,
    show_progress: bool = False,
) -> list[Generated]:
    """Answer every prompt (one user turn each), in input order.

    ``template=False`` feeds prompts as raw text (continuation, no chat wrapping). ``seeds`` gives each
    prompt its own sampling seed (default ``decoding.seed + i``). ``logits_processors`` see the model's raw
    scores, before temperature and top-k/top-p (where transformers puts a caller's ``logits_processor=``);
    ``filtered_processors`` see the scores after them, tokens outside the nucleus already at -inf (where
    transformers puts its own watermark processors). ``on_batch(n)`` is called after each batch
    with the number of prompts it finished (for a caller's progress bar); ``show_progress`` draws one here.
    """
    import torch

    decoding = decoding or Decoding()
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1 (got {batch_size})")
    for index, prompt in enumerate(prompts):
        if not isinstance(prompt, str) or not prompt.strip():
            raise ConfigError(f"prompt {index} is empty; pass the question or instruction to answer")
    if seeds is not None and len(seeds) != len(prompts):
        raise ConfigError(f"{len(seeds)} seeds for {len(prompts)} prompts; pass one seed per prompt")
    row_seeds: list[int | None] = (
        list(seeds)
        if seeds is not None
        else [None if decoding.seed is None else decoding.seed + i for i in range(len(prompts))]
    )
    tokenizer = loaded.tokenizer
    use_template = template and bool(getattr(tokenizer, "chat_template", None))
    texts = [render_prompt(tokenizer, p, system) if template else p for p in prompts]
    # The template already holds the special tokens; adding them again would duplicate BOS.
    add_special = not use_template
    lengths = [len(tokenizer(t, add_special_tokens=add_special)["input_ids"]) for t in texts]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])  # similar lengths share a batch
    stops = stop_ids(loaded)
    results: dict[int, Generated] = {}
    # A caller with its own live progress display passes on_batch instead (rich allows one live display).
    bar = progress() if show_progress else None
    with _left_padding(tokenizer) as pad_id, bar or contextlib.nullcontext(), torch.inference_mode():
        task = bar.add_task("generating", total=len(prompts)) if bar else None
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = _Batch(loaded, [texts[i] for i in chunk], pad_id, add_special)
            for processor in (*logits_processors, *filtered_processors):
                hook = getattr(processor, "start_batch", None)
                if hook is not None:
                    hook(list(chunk))
            _decode_batch(
                batch, decoding, [row_seeds[i] for i in chunk], logits_processors, stops, filtered_processors
            )
            for slot, index in enumerate(chunk):
                ids = batch.new[slot]
                results[index] = Generated(
                    prompt=prompts[index],
                    text=str(tokenizer.decode(ids, skip_special_tokens=True)),
                    token_ids=tuple(ids),
                    prompt_tokens=batch.prompt_tokens[slot],
                    finish_reason=batch.finish[slot],
                    stop_token=batch.stop_token[slot],
                )
            if bar is not None and task is not None:
                bar.advance(task, len(chunk))
            if on_batch is not None:
                on_batch(len(chunk))
    return [results[i] for i in range(len(prompts))]
