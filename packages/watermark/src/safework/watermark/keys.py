"""Watermark keys: 128-bit secrets in a small JSON file, turned into the SipHash key every green list uses.

One key per vendor (or per TTP grant): whoever holds it can embed and extract, nobody else can predict the
green lists. The file is written with mode 0600 and never overwritten silently.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import torch

from safework.core.ops.prf import key_from_bytes
from safework.watermark.errors import KeyFileError

KEY_BYTES = 16
KEY_FORMAT = "safework-watermark-key"
KEY_VERSION = 1


@dataclass(frozen=True)
class WatermarkKey:
    """A 16-byte watermark secret."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) != KEY_BYTES:
            size = len(self.secret) if isinstance(self.secret, bytes | bytearray) else "?"
            raise KeyFileError(
                f"a watermark key is exactly {KEY_BYTES} bytes ({2 * KEY_BYTES} hex digits), got {size} "
                "bytes; "
                "create one with `safework watermark keygen --out KEYFILE`"
            )

    @classmethod
    def generate(cls) -> WatermarkKey:
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_hex(cls, text: str) -> WatermarkKey:
        digits = text.strip().lower().removeprefix("0x")
        try:
            raw = bytes.fromhex(digits)
        except ValueError:
            raise KeyFileError(
                f"key {text[:8]!r}... is not hexadecimal; a key is {2 * KEY_BYTES} hex digits"
            ) from None
        return cls(raw)

    @classmethod
    def from_file(cls, path: str | Path) -> WatermarkKey:
        """Read a key file written by :meth:`to_file` (or a bare line of 32 hex digits)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KeyFileError(
                f"key file {path} does not exist; create it with `safework watermark keygen --out {path}`"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyFileError(f"cannot read key file {path}: {exc}") from None
        stripped = text.strip()
        if not stripped.startswith("{"):
            return cls.from_hex(stripped)
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise KeyFileError(
                f"key file {path} is not valid JSON ({exc}); regenerate it with keygen"
            ) from None
        if not isinstance(data, dict) or data.get("format") != KEY_FORMAT or "key" not in data:
            raise KeyFileError(
                f"{path} is not a safework watermark key file (expected format {KEY_FORMAT!r} with a "
                "'key' field)"
            )
        if data.get("version") != KEY_VERSION:
            raise KeyFileError(
                f"key file {path} has version {data.get('version')!r}; this safework reads {KEY_VERSION}"
            )
        return cls.from_hex(str(data["key"]))

    def to_file(self, path: str | Path, *, force: bool = False) -> Path:
        """Write the key readable by its owner only; refuse to replace an existing file unless ``force``."""
        path = Path(path)
        if path.exists() and not force:
            raise KeyFileError(
                f"{path} already exists; pass --force to replace it (the old key is then lost)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"format": KEY_FORMAT, "version": KEY_VERSION, "key": self.secret.hex()}) + "\n"
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(body)
        os.chmod(path, 0o600)
        return path

    def fingerprint(self) -> str:
        """A short public identifier of the key (not the key): lets reports say which key was used."""
        import hashlib

        return hashlib.sha256(b"safework-watermark-key-id" + self.secret).hexdigest()[:16]

    def prf_key(self, device: torch.device | str | None = None) -> torch.Tensor:
        """The (2,) int64 SipHash key tensor."""
        return key_from_bytes(self.secret, device=device)
