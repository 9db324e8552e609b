"""Reading GGUF files through transformers, and converting them once into a plain safetensors folder.

transformers dequantises every tensor of a GGUF on each load (12-25 s for SmolLM2-135M on 2 cores) and
marks the result as "quantized with gguf", which makes ``save_pretrained`` refuse. The conversion copies
the dequantised float32 weights into a fresh model of the same config (without ``quantization_config``)
and saves that: the folder then reloads in well under a second, with bit-identical weights.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rich.progress import Progress, TaskID

from safework.core.console import progress
from safework.core.errors import ModelLoadError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

T = TypeVar("T")

GGUF_MAGIC = b"GGUF"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
_patch_lock = threading.Lock()


def is_gguf_file(path: Path) -> bool:
    """True when the file starts with the GGUF magic bytes (the suffix alone can lie)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == GGUF_MAGIC
    except OSError:
        return False


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """Forbid hub access while loading, restoring the caller's environment afterwards."""
    saved = {key: os.environ.get(key) for key in OFFLINE_ENV}
    os.environ.update(OFFLINE_ENV)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' own tqdm bars, which would garble the rich progress display on stderr."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _track_dequantisation(bar: Progress, task: TaskID) -> Iterator[None]:
    """Route transformers' per-tensor GGUF loop into our progress task instead of its raw tqdm bar.

    The loop's ``tqdm`` is a module global of ``transformers.modeling_gguf_pytorch_utils``; when a future
    transformers renames it, this does nothing and the load still works (only the bar is less precise).
    """
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    original = getattr(gguf_utils, "tqdm", None)
    if original is None:
        yield
        return

    def tracked(iterable: Iterable[T], *args: Any, **kwargs: Any) -> Iterator[T]:
        items = list(iterable)
        bar.update(task, total=len(items))
        for item in items:
            yield item
            bar.advance(task)

    with _patch_lock:
        gguf_utils.tqdm = tracked
        try:
            yield
        finally:
            gguf_utils.tqdm = original


def _load_error(gguf: Path, what: str, exc: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"could not read the {what} from GGUF file {gguf}: {type(exc).__name__}: {exc}. "
        "Check that the file is a complete GGUF of a causal LM architecture transformers supports "
        "(re-download or reinstall it), or point --model at a Hugging Face folder instead."
    )


def load_gguf_tokenizer(gguf: Path) -> PreTrainedTokenizerBase:
    """The tokenizer (and chat template) stored inside a GGUF file."""
    from transformers import AutoTokenizer

    try:
        with offline():
            return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
    except Exception as exc:
        raise _load_error(gguf, "tokenizer", exc) from exc


def load_gguf_model(gguf: Path, *, bar: Progress | None = None) -> PreTrainedModel:
    """Dequantise a GGUF into a float32 transformers model (slow: every tensor is converted)."""
    import torch
    from transformers import AutoModelForCausalLM

    own_bar = bar if bar is not None else progress()
    context = contextlib.nullcontext(own_bar) if bar is not None else own_bar
    try:
        with context, offline(), quiet_transformers():
            task = own_bar.add_task(f"dequantising {gguf.name}", total=None)
            with _track_dequantisation(own_bar, task):
                model = AutoModelForCausalLM.from_pretrained(
                    str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32, local_files_only=True
                )
    except ModelLoadError:
        raise
    except Exception as exc:
        raise _load_error(gguf, "model weights", exc) from exc
    return model


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Write ``gguf`` as a plain Hugging Face folder (float32 safetensors + tokenizer) into ``out_dir``.

    float32 because the dequantised values are float32: storing them as-is keeps the cached model
    bit-identical to a direct GGUF load (bfloat16 would move SmolLM2's logits by up to ~1.3).
    """
    import torch
    from transformers import AutoModelForCausalLM

    with progress() as bar:
        step = bar.add_task(f"reading the tokenizer of {gguf.name}", total=None)
        tokenizer = load_gguf_tokenizer(gguf)
        bar.update(step, total=1, completed=1)
        model = load_gguf_model(gguf, bar=bar)
        step = bar.add_task("writing float32 safetensors to the cache", total=None)
        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        # A meta-device skeleton skips random initialisation; assign=True adopts the loaded tensors as-is.
        with torch.device("meta"):
            plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False, assign=True)
        if missing or unexpected:
            raise ModelLoadError(
                f"converting {gguf} produced a state dict that does not fit its own config "
                f"(missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}). "
                "The converter does not support this GGUF architecture; load a Hugging Face folder instead."
            )
        if getattr(config, "tie_word_embeddings", False):
            plain.tie_weights()
        with quiet_transformers():
            plain.save_pretrained(str(out_dir))
            tokenizer.save_pretrained(str(out_dir))
        bar.update(step, total=1, completed=1)
