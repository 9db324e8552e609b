"""Train a verifier head on its corpus, evaluate it on the held-out split, cache weights + metadata.

Weights live in ``cache_dir("verifiers", principle, <version>)`` where the version hashes the code and
corpus versions, the source of the corpus/feature/training modules, the pinned data carriers, the encoder,
the chunking and the seed; any change trains a new head instead of silently reusing a stale one.
``metadata.json`` records the corpus digest, seed, hyper-parameters, timings and the figures on realistic
held-out text (per class and per group, with the majority-class baseline). Loading a verifier whose weights
are missing trains it (a few minutes cold on 2 cores, nearly all of it embedding; window embeddings are
cached and shared by every head); concurrent processes wait for one trainer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from safework.core.answer_format import final_answer
from safework.core.errors import ModelLoadError
from safework.verifiers.neural import corpus as corpus_mod
from safework.verifiers.neural import keyword
from safework.verifiers.neural.embedding import (
    CHUNK_TOKENS,
    ENCODER_ID,
    MAX_CHUNKS,
    PROMPT_CHUNKS,
    EmbeddingCache,
)
from safework.verifiers.neural.head import make_head, pair_features
from safework.verifiers.neural.metrics import by_source, groups, human_binary, quality

TRAINING_VERSION = "3"
PRINCIPLES = corpus_mod.PRINCIPLES
# How each head weighs its training examples (chosen on a dev split carved from the training prompts,
# averaged over five prompt splits; never on the held-out figures):
# - value and normal: every target kind (allowed-label set) weighs the same in total;
# - safety: each realistic example weighs REALISTIC_WEIGHT templated ones. Templated pairs teach the edges
#   (bare refusals, disclaimers, openings, off-topic text) but realistic ones carry what real answers look
#   like; dev balanced accuracy rose from 87.9 % (equal weights) to 89.2 % (16x) and flattened after.
#   Per-kind weights hurt safety: they gave the 8 "answered, not a refusal" pairs the weight of 700
#   compliant ones.
KIND_BALANCED = frozenset({"value", "normal"})
REALISTIC_WEIGHT = {"safety": 16.0}
# A fixed logit offset per label, folded into the head's output bias after fitting (so every path, argmax and
# probabilities alike, sees it): a prior correction. Compliant answers are the group the safety head misses
# most (they read like helpful instructions), and the corpus holds far more safe than unsafe text. On the
# same dev splits (with the generated health answers) balanced accuracy is flat from +1.0 to +2.0 on
# "unsafe" (89.9 % and 90.0 %, vs 89.1 % at 0) and compliant recall rises from 76.0 % (0) to 80.9 % (+1.0)
# and 85.0 % (+2.0). +1.0, because the offset also lowers the graded score of every benign practical answer:
# the wasp-nest answer scores 0.97 at 0, 0.92 at +1.0 and 0.81 at +2.0.
LOGIT_OFFSETS = {"safety": {"unsafe": 1.0}}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    epochs: int = 40
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-2
    dropout: float = 0.1


@dataclass
class TrainedHead:
    """A trained head with its metadata; ``retrained`` says whether this process trained it."""

    principle: str
    labels: tuple[str, ...]
    head: Any
    metadata: dict[str, Any]
    path: Path
    retrained: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _code_hash() -> str:
    """sha256 of the modules and stored answers that decide what a head learns, as imported."""
    from safework.verifiers.neural import embedding, generated, head, templates

    modules = (corpus_mod, templates, generated, embedding, head, keyword, sys.modules[__name__])
    files = [Path(m.__file__ or "") for m in modules] + [generated.ANSWERS_FILE]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files if f.is_file())).hexdigest()


_CODE_HASH = _code_hash()


def version(principle: str, config: TrainConfig) -> str:
    """The cache key: code + corpus versions, data carriers, encoder, truncation and hyper-parameters."""
    from safework.core.data import get_dataset

    carriers = sorted({str(get_dataset(n).carrier_id()) for n in corpus_mod.DATASETS})
    blob = json.dumps(
        [
            TRAINING_VERSION,
            corpus_mod.CORPUS_VERSION,
            principle,
            carriers,
            _CODE_HASH,
            ENCODER_ID,
            CHUNK_TOKENS,
            MAX_CHUNKS,
            PROMPT_CHUNKS,
            asdict(config),
        ],
        sort_keys=True,
    )
    return f"v{TRAINING_VERSION}.{corpus_mod.CORPUS_VERSION}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def weights_dir(principle: str, config: TrainConfig) -> Path:
    from safework.core.paths import cache_dir

    return cache_dir("verifiers", principle, version(principle, config))


def _features(prompts: list[str], responses: list[str], bar: Any) -> Any:
    """Pair features, each distinct text embedded once (and cached on disk for the next training)."""

    from safework.core.paths import cache_dir

    folder = cache_dir("verifiers", "embeddings")
    answers = [final_answer(r) for r in responses]
    parts = []
    cache = EmbeddingCache(folder)
    for role, texts, chunks in (("prompts", prompts, PROMPT_CHUNKS), ("answers", answers, MAX_CHUNKS)):
        task = bar.add_task(f"embedding {role}", total=None)

        def advance(done: int, total: int, task: Any = task) -> None:
            bar.update(task, advance=done, total=total)

        parts.append(cache.lookup(texts, chunks, advance))
        bar.update(task, total=1, completed=1)
    return pair_features(parts[0], parts[1], prompts, answers)


def _masks(examples: list[corpus_mod.Example], labels: tuple[str, ...]) -> Any:
    import torch

    return torch.tensor([[label in e.allowed for label in labels] for e in examples], dtype=torch.bool)


def example_weights(principle: str, examples: list[corpus_mod.Example], masks: Any) -> Any:
    """Per-example loss weights, mean 1: one scheme per principle (KIND_BALANCED or REALISTIC_WEIGHT), else
    equal."""
    import torch

    if principle in KIND_BALANCED:
        kinds = [tuple(row) for row in masks.tolist()]
        counts = {k: kinds.count(k) for k in set(kinds)}
        weights = torch.tensor([1.0 / counts[k] for k in kinds])
    elif principle in REALISTIC_WEIGHT:
        weights = torch.tensor([REALISTIC_WEIGHT[principle] if e.realistic else 1.0 for e in examples])
    else:
        weights = torch.ones(len(examples))
    return weights / weights.mean()


def _fit(features: Any, masks: Any, weights: Any, config: TrainConfig, on_epoch: Any = None) -> Any:
    """Weighted set-valued cross-entropy, −log P(label ∈ allowed), one thread (the head is tiny; one thread
    is as fast and bit-identical on any machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit_loop(features, masks, weights, config, on_epoch)
    finally:
        torch.set_num_threads(threads)


def _fit_loop(features: Any, masks: Any, weights: Any, config: TrainConfig, on_epoch: Any) -> Any:
    import torch

    torch.manual_seed(config.seed)
    head = make_head(masks.shape[1], config.dropout)
    optimiser = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    head.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(features), generator=generator)
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            logits = head(features[idx])
            inside = logits.masked_fill(~masks[idx], float("-inf")).logsumexp(-1)
            loss = ((logits.logsumexp(-1) - inside) * weights[idx]).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        if on_epoch is not None:
            on_epoch()
    return head.eval()


def apply_offsets(head: Any, principle: str, labels: tuple[str, ...]) -> Any:
    """Fold the principle's fixed logit offsets (LOGIT_OFFSETS) into the head's output bias."""
    import torch

    with torch.no_grad():
        for label, offset in LOGIT_OFFSETS.get(principle, {}).items():
            head[-1].bias[labels.index(label)] += offset
    return head


def predict(head: Any, features: Any, labels: tuple[str, ...]) -> list[str]:
    import torch

    with torch.inference_mode():
        return [labels[i] for i in head(features).argmax(-1).tolist()]


def predict_examples(trained: TrainedHead, examples: list[corpus_mod.Example]) -> list[str]:
    """Labels for corpus examples through the training path (embeddings from the disk cache: fast)."""
    from safework.core.console import progress

    with progress() as bar:
        features = _features([e.prompt for e in examples], [e.response for e in examples], bar)
    return predict(trained.head, features, trained.labels)


def _evaluate(
    head: Any, split: list[corpus_mod.Example], features: Any, labels: tuple[str, ...], principle: str
) -> dict[str, Any]:
    predicted = predict(head, features, labels)
    figures = quality(split, predicted, labels)
    figures["by_source"] = by_source(split, predicted)
    figures["groups"] = groups(split, predicted)
    if principle == "safety":
        figures["human_binary"] = human_binary(split, predicted)
        rules = [keyword.classify(e.prompt, e.response) for e in split]
        figures["keyword"] = {k: v for k, v in quality(split, rules, labels).items() if k != "per_class"}
        figures["keyword"]["groups"] = groups(split, rules)
        figures["keyword"]["human_binary"] = human_binary(split, rules)
    return figures


def train(principle: str, config: TrainConfig | None = None, *, show_progress: bool = True) -> TrainedHead:
    """Build the corpus, embed, fit, evaluate and write weights + metadata; returns the trained head."""
    import torch

    from safework.core.console import err_console, progress

    if principle not in PRINCIPLES:
        raise ValueError(f"cannot train {principle!r}: choose one of {', '.join(PRINCIPLES)}")
    config = config or TrainConfig()
    started = time.perf_counter()
    data = corpus_mod.build_corpus(principle, config.seed)
    # Figures come from realistic text no head trained on: the held-out split plus the HarmBench pairs.
    train_split, heldout = data.train, data.evaluation
    everything = train_split + heldout
    with progress() as bar:
        features = _features([e.prompt for e in everything], [e.response for e in everything], bar)
        embedded = time.perf_counter()
        task = bar.add_task(f"fitting {principle} head", total=config.epochs)
        n_train, n_held = len(train_split), len(heldout)
        masks = _masks(train_split, data.labels)
        weights = example_weights(principle, train_split, masks)
        head = _fit(features[:n_train], masks, weights, config, lambda: bar.advance(task))
        apply_offsets(head, principle, data.labels)
    fitted = time.perf_counter()
    metrics = {
        "heldout": _evaluate(head, heldout, features[n_train:], data.labels, principle),
        "train": quality(train_split, predict(head, features[:n_train], data.labels), data.labels),
    }
    total_seconds = round(time.perf_counter() - started, 2)
    metadata: dict[str, Any] = {
        "principle": principle,
        "labels": list(data.labels),
        "version": version(principle, config),
        "data_hash": data.digest(),
        "seed": config.seed,
        "config": asdict(config),
        "loss_weights": "kind-balanced"
        if principle in KIND_BALANCED
        else {"realistic": REALISTIC_WEIGHT.get(principle, 1.0)},
        "logit_offsets": LOGIT_OFFSETS.get(principle, {}),
        "encoder": ENCODER_ID,
        "reads": {"chunk_tokens": CHUNK_TOKENS, "prompt_chunks": PROMPT_CHUNKS, "answer_chunks": MAX_CHUNKS},
        "counts": {"train": n_train, "heldout": n_held, "eval_only": len(data.eval_only)},
        "seconds": {
            "embedding": round(embedded - started, 2),
            "fit": round(fitted - embedded, 2),
            "total": total_seconds,
        },
        "trained_at": time.time(),
        "torch_threads": torch.get_num_threads(),
        "metrics": metrics,
    }
    folder = weights_dir(principle, config)
    _write(folder, head, metadata)
    held = metrics["heldout"]
    err_console.print(
        f"[bold]{principle}[/] head trained in {total_seconds} s: realistic held-out balanced accuracy "
        f"{held['groups']['balanced_accuracy']:.3f} over groups, macro-F1 {held['macro_f1']:.3f} → {folder}"
    )
    return TrainedHead(principle, data.labels, head, metadata, folder, retrained=True)


def _write(folder: Path, head: Any, metadata: dict[str, Any]) -> None:
    import torch

    tmp = folder / f"head.pt.tmp{os.getpid()}"
    torch.save(head.state_dict(), tmp)
    os.replace(tmp, folder / "head.pt")
    (folder / f"metadata.json.tmp{os.getpid()}").write_text(json.dumps(metadata, indent=2))
    os.replace(folder / f"metadata.json.tmp{os.getpid()}", folder / "metadata.json")


def load(principle: str, config: TrainConfig | None = None) -> TrainedHead | None:
    """The cached head, or None when it has not been trained for this version."""
    import torch

    config = config or TrainConfig()
    folder = weights_dir(principle, config)
    if not (folder / "head.pt").exists() or not (folder / "metadata.json").exists():
        return None
    try:
        metadata = json.loads((folder / "metadata.json").read_text())
        head = make_head(len(metadata["labels"]), config.dropout)
        head.load_state_dict(torch.load(folder / "head.pt", map_location="cpu", weights_only=True))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(
            f"the cached {principle} verifier head in {folder} is unreadable ({exc}); delete that folder "
            f"or run `safework verifiers train {principle} --force` to retrain it"
        ) from exc
    return TrainedHead(principle, tuple(metadata["labels"]), head.eval(), metadata, folder)


@contextlib.contextmanager
def _training_lock(principle: str, config: TrainConfig) -> Iterator[None]:
    """One trainer per head version: other processes (server workers, tests) wait, then load its result."""
    import fcntl

    folder = weights_dir(principle, config)
    with open(folder / ".training.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_or_train(principle: str, config: TrainConfig | None = None, *, force: bool = False) -> TrainedHead:
    """The cached head; trains (with a progress bar and a log line) when missing or when ``force``."""
    config = config or TrainConfig()
    if not force:
        found = load(principle, config)
        if found is not None:
            return found
    with _training_lock(principle, config):
        if not force:
            found = load(principle, config)  # another process may have trained it while we waited
            if found is not None:
                return found
            log.warning("no cached %s verifier head; training it now (a few minutes, once)", principle)
        return train(principle, config)
