"""Seed issuance: the TTP turns an identity message into a secret seed and a payload with keyed hashes.

CredID (Li et al. 2024, §3) binds each seed to an identity message m (vendor, model, version, time) through a
key-encrypted hash and keeps seed → m in a mapping database. Here seed = HMAC-SHA256(TTP secret, canonical
m) truncated to 64 bits, so one identity in one issuance period always maps to the same seed: repeated
requests get the cached grant instead of growing the seed table (every seed is a candidate the vendor tests
at attribution). The payload a vendor embeds is another keyed hash of the seed, so a text's decoded
payload is a second, independent check of the seed a vendor reports.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from safework.core.errors import ConfigError
from safework.watermark.ttp.store import IdentityMessage

SECRET_BYTES = 32
DEFAULT_PERIOD_S = 86_400
DEFAULT_PAYLOAD_BITS = 16


def write_secret(path: str | Path) -> Path:
    """Write a fresh secret as 64 hex digits, mode 0600; an existing secret is never replaced (every seed the
    TTP ever issued derives from it)."""
    import secrets

    from safework.watermark.security._files import write_files

    path = Path(path)
    if path.exists():
        raise ConfigError(f"{path} exists; the seed secret is never overwritten (pick another path)")
    write_files(
        [(path, (secrets.token_hex(SECRET_BYTES) + "\n").encode(), 0o600)],
        overwrite=False,
        error=ConfigError,
        flag="a new --out path",
    )
    return path


def load_secret(path: str | Path) -> bytes:
    """The TTP's 32-byte seed secret from a file of 64 hex digits (written by :func:`write_secret`)."""
    path = Path(path)
    try:
        text = path.read_text().strip()
        secret = bytes.fromhex(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read the TTP seed secret {path} ({exc}); create one with "
            "`safework watermark ttp init-secret --out PATH`"
        ) from exc
    if len(secret) != SECRET_BYTES:
        raise ConfigError(
            f"the TTP seed secret {path} must hold {2 * SECRET_BYTES} hex digits, got {len(text)}"
        )
    return secret


@dataclass(frozen=True)
class SeedIssuer:
    """Derives seeds, grant ids, validity windows and payloads from one secret."""

    secret: bytes
    period_s: int = DEFAULT_PERIOD_S
    payload_bits: int = DEFAULT_PAYLOAD_BITS

    def __post_init__(self) -> None:
        if len(self.secret) != SECRET_BYTES:
            raise ConfigError(f"the TTP seed secret must be {SECRET_BYTES} bytes, got {len(self.secret)}")
        if not 60 <= self.period_s <= 366 * 86_400:
            raise ConfigError(f"the issuance period must be 60 s .. 366 days, got {self.period_s} s")
        if not 1 <= self.payload_bits <= 64:
            raise ConfigError(f"payload_bits must be 1..64, got {self.payload_bits}")

    def _mac(self, tag: bytes, data: bytes) -> bytes:
        return hmac.new(self.secret, tag + data, hashlib.sha256).digest()

    def bucket(self, unix_seconds: float) -> int:
        return int(unix_seconds // self.period_s)

    def window(self, bucket: int) -> tuple[float, float]:
        return float(bucket * self.period_s), float((bucket + 1) * self.period_s)

    def seed(self, identity: IdentityMessage) -> int:
        return int.from_bytes(self._mac(b"seed\x00", identity.canonical_bytes())[:8], "big")

    def grant_id(self, seed: int) -> str:
        return "g-" + self._mac(b"grant\x00", seed.to_bytes(8, "big"))[:10].hex()

    def payload(self, seed: int) -> int:
        word = int.from_bytes(self._mac(b"payload\x00", seed.to_bytes(8, "big"))[:8], "big")
        return word >> (64 - self.payload_bits)


def pack_bits(value: int, bits: int) -> bytes:
    """``value`` as ``bits`` bits packed big-endian, first bit = most significant bit of byte 0."""
    size = (bits + 7) // 8
    return (value << (8 * size - bits)).to_bytes(size, "big")


def unpack_bits(data: bytes, bits: int) -> int:
    size = (bits + 7) // 8
    if len(data) != size:
        raise ValueError(f"{bits} packed bits take {size} bytes, got {len(data)}")
    return int.from_bytes(data, "big") >> (8 * size - bits)
