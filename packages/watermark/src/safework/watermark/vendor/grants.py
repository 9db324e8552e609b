"""The seed grants a vendor received from the TTP, kept in a local SQLite file.

A vendor must still hold every seed it embedded with when, months later, the TTP asks it to extract: the
grants are written (WAL, synchronous) before the vendor uses them, and each one is checked against the
TTP's signature when it arrives.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safework.core.errors import ConfigError
from safework.core.rpc.gen.watermark.v1 import ttp_pb2
from safework.watermark.security import signing
from safework.watermark.ttp.seeds import unpack_bits

_SCHEMA = """
CREATE TABLE IF NOT EXISTS grants (
    seed_id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    model_version TEXT NOT NULL,
    valid_from REAL NOT NULL,
    valid_to REAL NOT NULL,
    grant BLOB NOT NULL
)
"""


@dataclass(frozen=True)
class Grant:
    """One usable grant: what to embed (payload) under which seed."""

    seed_id: str
    seed: int
    payload: int
    payload_bits: int
    model_id: str
    model_version: str
    valid_from: float
    valid_to: float

    @classmethod
    def from_message(cls, message: Any) -> Grant:
        return cls(
            seed_id=message.seed_id,
            seed=int.from_bytes(bytes(message.seed), "big"),
            payload=unpack_bits(bytes(message.payload), message.payload_bits),
            payload_bits=message.payload_bits,
            model_id=message.identity.model_id,
            model_version=message.identity.model_version,
            valid_from=message.valid_from.ToNanoseconds() / 1e9,
            valid_to=message.valid_to.ToNanoseconds() / 1e9,
        )


def verify_grant(message: Any, ttp_public_key: bytes) -> None:
    """Raise unless the TTP signed this grant (over the grant with signature and audit_sequence cleared)."""
    unsigned = ttp_pb2.SeedGrant()
    unsigned.CopyFrom(message)
    unsigned.ClearField("ttp_signature")
    unsigned.ClearField("audit_sequence")
    if not signing.verify(
        ttp_public_key, unsigned.SerializeToString(deterministic=True), message.ttp_signature
    ):
        raise signing.BadSignatureError(
            f"seed grant {message.seed_id!r} is not signed by the TTP key this vendor trusts; check --ttp-key"
        )


def watermark_secret(vendor_secret: bytes, seed: int) -> bytes:
    """The 16-byte watermark key for one seed: HMAC(vendor's own secret, seed).

    The TTP knows the seed but not the vendor's secret, so it can neither embed nor extract on its own."""
    return hmac.new(vendor_secret, b"credid-key\x00" + seed.to_bytes(8, "big"), hashlib.sha256).digest()[:16]


class GrantBook:
    """Grants by seed id, durable in SQLite; thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                f"cannot open the vendor grant book {self.path} ({exc}); pass another --grants"
            ) from exc
        self._lock = threading.Lock()

    def add(self, message: Any) -> Grant:
        grant = Grant.from_message(message)
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO grants VALUES (?, ?, ?, ?, ?, ?)",
                (
                    grant.seed_id,
                    grant.model_id,
                    grant.model_version,
                    grant.valid_from,
                    grant.valid_to,
                    message.SerializeToString(deterministic=True),
                ),
            )
        return grant

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[Grant]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [Grant.from_message(ttp_pb2.SeedGrant.FromString(row[0])) for row in rows]

    def get(self, seed_id: str) -> Grant | None:
        found = self._rows("SELECT grant FROM grants WHERE seed_id = ?", (seed_id,))
        return found[0] if found else None

    def all(self) -> list[Grant]:
        return self._rows("SELECT grant FROM grants ORDER BY valid_from, seed_id")

    def current(self, model_id: str, now: float | None = None) -> Grant | None:
        now = time.time() if now is None else now
        found = self._rows(
            "SELECT grant FROM grants WHERE model_id = ? AND valid_from <= ? AND ? < valid_to "
            "ORDER BY valid_from DESC LIMIT 1",
            (model_id, now, now),
        )
        return found[0] if found else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
