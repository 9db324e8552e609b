"""Resumable generation: every answer is appended to ``generations.jsonl`` in the output folder as soon as
its batch finishes, keyed by what determines it, so a rerun (after a crash, a Ctrl-C, or with a larger
``--n``) generates only what is missing.

The key hashes the model fingerprint (its weights, dtype and tokenizer), the suite, the decoding (system
prompt, sampler, seed, token budget) and the prompt. Change any of them and the old answers no longer
match, so a cache can never serve answers of another model or setting.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safework.core.errors import ConfigError

if TYPE_CHECKING:
    from safework.core.models.loader import LoadedModel

CACHE_FILE = "generations.jsonl"


def model_fingerprint(loaded: LoadedModel) -> str:
    """sha256 over every parameter (name, shape, dtype, bytes) and the tokenizer's vocabulary and template.

    Hashing the weights themselves (about a second for 135M parameters) identifies a checkpoint no
    matter where it is stored or what it is called.
    """
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(loaded.model.state_dict().items()):
        h.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        data = tensor.detach().to("cpu").contiguous()
        if data.dtype == torch.bfloat16:
            data = data.view(torch.int16)
        h.update(data.numpy().tobytes())
    tokenizer = loaded.tokenizer
    h.update(str(len(tokenizer)).encode())
    h.update(str(getattr(tokenizer, "chat_template", "") or "").encode())
    h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    return h.hexdigest()[:20]


def generation_key(fingerprint: str, suite: str, decoding: dict[str, Any], prompt: str) -> str:
    payload = json.dumps([fingerprint, suite, decoding, prompt], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class GenerationCache:
    """The answers already generated for this output folder, by key; :meth:`add` appends and flushes."""

    path: Path
    entries: dict[str, dict[str, Any]]

    @classmethod
    def open(cls, folder: Path) -> GenerationCache:
        """Read ``folder/generations.jsonl``; a torn last line (an interrupted append) is cut off the file
        so the next append starts on a fresh line."""
        path = folder / CACHE_FILE
        entries: dict[str, dict[str, Any]] = {}
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines, start=1):
                try:
                    entry = json.loads(line)
                    entries[entry["key"]] = entry
                except (json.JSONDecodeError, KeyError, TypeError):
                    if number < len(lines):
                        raise ConfigError(
                            f"{path} line {number} is not a generation record; delete the file (answers "
                            "will be regenerated) or pass another --out folder"
                        ) from None
                    kept = "".join(f"{kept_line}\n" for kept_line in lines[:-1])
                    path.write_text(kept, encoding="utf-8")
        return cls(path, entries)

    def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    def add(self, records: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                self.entries[record["key"]] = record
