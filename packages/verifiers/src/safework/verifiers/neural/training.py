"""Train a verifier head on its corpus, evaluate it on the held-out split, cache weights + metadata.

Weights live in ``cache_dir("verifiers", principle, <version>)`` where the version hashes the code and
corpus versions, the pinned data carriers, the encoder, the truncation and the seed; any change trains a
new head instead of silently reusing a stale one. ``metadata.json`` records the corpus digest, seed,
hyper-parameters, timings and held-out figures. Loading a verifier whose weights are missing trains them
(≈ a minute on 2 cores, most of it embedding; embeddings are cached across trainings).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from safework.core.errors import ModelLoadError
from safework.verifiers.neural import corpus as corpus_mod
from safework.verifiers.neural import keyword
from safework.verifiers.neural.embedding import ENCODER_ID, PROMPT_TOKENS, RESPONSE_TOKENS, EmbeddingCache
from safework.verifiers.neural.head import final_answer, make_head, pair_features
from safework.verifiers.neural.metrics import by_source, quality

TRAINING_VERSION = "1"
PRINCIPLES = ("safety", "value")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    epochs: int = 30
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


def version(principle: str, config: TrainConfig) -> str:
    """The cache key: code + corpus versions, data carriers, encoder, truncation and hyper-parameters."""
    from safework.core.data import get_dataset

    carriers = sorted({str(get_dataset(n).carrier_id()) for n in corpus_mod.DATASETS})
    blob = json.dumps([TRAINING_VERSION, corpus_mod.CORPUS_VERSION, principle, carriers, ENCODER_ID,
                       PROMPT_TOKENS, RESPONSE_TOKENS, asdict(config)], sort_keys=True)  # fmt: skip
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
    for role, texts, tokens in (("prompts", prompts, PROMPT_TOKENS), ("responses", answers, RESPONSE_TOKENS)):
        task = bar.add_task(f"embedding {role}", total=None)
        parts.append(EmbeddingCache(folder, tokens).lookup(
            texts, lambda done, total, task=task: bar.update(task, advance=done, total=total)))  # fmt: skip
        bar.update(task, total=1, completed=1)
    return pair_features(parts[0], parts[1], answers)


def _masks(examples: list[corpus_mod.Example], labels: tuple[str, ...]) -> Any:
    import torch

    return torch.tensor([[label in e.allowed for label in labels] for e in examples], dtype=torch.bool)


def _fit(features: Any, masks: Any, config: TrainConfig, num_labels: int, on_epoch: Any = None) -> Any:
    """Set-valued cross-entropy (−log P(label ∈ allowed)), examples weighted to balance target kinds."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the head is tiny; one thread is as fast and bit-identical on any machine
    try:
        return _fit_loop(features, masks, config, num_labels, on_epoch)
    finally:
        torch.set_num_threads(threads)


def _fit_loop(features: Any, masks: Any, config: TrainConfig, num_labels: int, on_epoch: Any) -> Any:
    import torch

    torch.manual_seed(config.seed)
    head = make_head(num_labels, config.dropout)
    kinds = [tuple(row) for row in masks.tolist()]
    counts = {k: kinds.count(k) for k in set(kinds)}
    weights = torch.tensor([1.0 / counts[k] for k in kinds])
    weights = weights / weights.mean()
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


def _evaluate(head: Any, split: list[corpus_mod.Example], features: Any, labels: tuple[str, ...],
              principle: str) -> dict[str, Any]:  # fmt: skip
    predicted = predict(head, features, labels)
    figures = quality(split, predicted, labels)
    figures["by_source"] = by_source(split, predicted)
    if principle == "safety":
        rules = [keyword.classify(e.prompt, e.response) for e in split]
        figures["keyword"] = {k: v for k, v in quality(split, rules, labels).items() if k != "per_class"}
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
    train_split, heldout, harmbench = data.train, data.heldout, list(data.harmbench)
    everything = train_split + heldout + harmbench
    with progress() as bar:
        features = _features([e.prompt for e in everything], [e.response for e in everything], bar)
        embedded = time.perf_counter()
        task = bar.add_task(f"fitting {principle} head", total=config.epochs)
        n_train, n_held = len(train_split), len(heldout)
        head = _fit(features[:n_train], _masks(train_split, data.labels), config, len(data.labels),
                    lambda: bar.advance(task))  # fmt: skip
    fitted = time.perf_counter()
    metrics = {
        "heldout": _evaluate(head, heldout, features[n_train : n_train + n_held], data.labels, principle),
        "harmbench": _evaluate(head, harmbench, features[n_train + n_held :], data.labels, principle),
        "train": quality(train_split, predict(head, features[:n_train], data.labels), data.labels),
    }
    total_seconds = round(time.perf_counter() - started, 2)
    metadata: dict[str, Any] = {
        "principle": principle, "labels": list(data.labels), "version": version(principle, config),
        "data_hash": data.digest(), "seed": config.seed, "config": asdict(config), "encoder": ENCODER_ID,
        "max_tokens": {"prompt": PROMPT_TOKENS, "response": RESPONSE_TOKENS},
        "counts": {"train": n_train, "heldout": n_held, "harmbench": len(harmbench)},
        "seconds": {"embedding": round(embedded - started, 2), "fit": round(fitted - embedded, 2),
                    "total": total_seconds},
        "trained_at": time.time(), "torch_threads": torch.get_num_threads(), "metrics": metrics,
    }  # fmt: skip
    folder = weights_dir(principle, config)
    _write(folder, head, metadata)
    held = metrics["heldout"]
    err_console.print(
        f"[bold]{principle}[/] head trained in {total_seconds} s: held-out accuracy "
        f"{held['accuracy']:.3f}, macro-F1 {held['macro_f1']:.3f} → {folder}"
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


def load_or_train(principle: str, config: TrainConfig | None = None, *, force: bool = False) -> TrainedHead:
    """The cached head; trains (with a progress bar and a log line) when missing or when ``force``."""
    if not force:
        found = load(principle, config)
        if found is not None:
            return found
        log.warning("no cached %s verifier head; training it now (about a minute, once)", principle)
    return train(principle, config)
