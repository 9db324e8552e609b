"""Exact checkpoints: everything a resumed run needs to continue as if it had never stopped.

A checkpoint directory holds the model as a Hugging Face folder (``model/``: what ``safework rl eval
--model`` and ``safework model chat --model`` load), and ``trainer.pt`` with the optimiser, the scheduler,
every RNG state, the data cursors, the curriculum position and the zero-variance bookkeeping. It is
written under a temporary name, flushed to disk, then renamed, and only then does ``checkpoints/latest``
point at it: a run killed at any moment leaves the previous checkpoint intact and loses only the steps
since it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from safework.core.errors import ConfigError

FORMAT = "safework-rl-checkpoint/1"
LATEST = "latest"


@dataclass
class TrainState:
    """Where the run is: curriculum position, data cursors and the counters that span steps."""

    stage_index: int = 0  # the stage being run (stages before it are finished)
    stage_step: int = 0  # rl steps finished in that stage
    global_step: int = 0  # rl steps finished in the run
    cursors: dict[str, list[int]] = field(default_factory=dict)  # stage name -> per-source cursor
    groups: int = 0  # prompt groups rolled out so far
    zero_variance_groups: int = 0  # of which had all-equal rewards (skipped)
    failed_groups: int = 0  # of which had an item no verifier could score (skipped)
    first_reward: float | None = None
    last_reward: float | None = None


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    descriptor = os.open(root, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def save_checkpoint(
    run_dir: Path,
    model: Any,
    tokenizer: Any,
    trainer_state: dict[str, Any],
    state: TrainState,
    meta: dict[str, Any],
    keep: int,
) -> Path:
    """Write ``run_dir/checkpoints/step-NNNNNN-sK`` atomically, point ``latest`` at it, prune old ones."""
    import torch

    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{state.global_step:06d}-s{state.stage_index}"
    final = root / name
    temporary = root / f".{name}.tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one "Writing model shards" bar per checkpoint is noise
    model.save_pretrained(temporary / "model", safe_serialization=True)
    tokenizer.save_pretrained(temporary / "model")
    rng = {"python": random.getstate(), "torch": torch.get_rng_state()}
    torch.save({**trainer_state, "rng": rng, "state": asdict(state)}, temporary / "trainer.pt")
    (temporary / "meta.json").write_text(json.dumps({"format": FORMAT, **meta}, indent=2), encoding="utf-8")
    _fsync_tree(temporary)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(temporary, final)
    _write_atomic(root / LATEST, name + "\n")
    finished = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-"))
    for old in finished[:-keep]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def find_checkpoint(path: Path) -> Path:
    """``path`` itself when it is a checkpoint, else the run directory's latest checkpoint."""
    if (path / "trainer.pt").is_file():
        return path
    pointer = path / "checkpoints" / LATEST
    if pointer.is_file():
        found = path / "checkpoints" / pointer.read_text(encoding="utf-8").strip()
        if (found / "trainer.pt").is_file():
            return found
    raise ConfigError(
        f"{path} is neither a checkpoint (no trainer.pt) nor a run directory with checkpoints/latest; "
        "pass the --out directory of an earlier `safework rl train` run, or one of its "
        "checkpoints/step-* folders"
    )


def read_meta(checkpoint: Path) -> dict[str, Any]:
    try:
        meta: dict[str, Any] = json.loads((checkpoint / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{checkpoint}/meta.json is missing or unreadable ({exc}); the checkpoint is damaged"
        ) from exc
    if meta.get("format") != FORMAT:
        raise ConfigError(
            f"{checkpoint} has format {meta.get('format')!r}, not {FORMAT!r}; it was not written by this "
            "trainer"
        )
    return meta


def load_trainer_state(checkpoint: Path) -> tuple[dict[str, Any], TrainState]:
    """The saved optimiser/scheduler states and the train state; RNGs are restored here."""
    import torch

    saved = torch.load(checkpoint / "trainer.pt", map_location="cpu", weights_only=False)
    rng = saved.pop("rng")
    random.setstate(rng["python"])
    torch.set_rng_state(rng["torch"])
    state = TrainState(**saved.pop("state"))
    return saved, state
