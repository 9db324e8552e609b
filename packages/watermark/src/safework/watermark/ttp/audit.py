"""The audit log's hash chain: one definition shared by every store and by ``safework watermark ttp audit``.

entry_hash = SHA-256(prev_hash as 32 raw bytes ‖ UTF-8 canonical JSON of [index, timestamp, kind, payload]),
and entry 0's prev_hash is 64 zeros. Editing, removing or reordering any entry breaks its own hash or the
next entry's prev_hash, so a verifier that walks the chain names the first entry that was touched.
Canonical JSON: sorted keys, no whitespace, UTF-8, no NaN/Infinity, so any language can recompute a hash.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from safework.watermark.ttp.store import (
    MAX_AUDIT_PAGE,
    AuditEntry,
    StoreInputError,
    TTPStore,
    check_time,
)

GENESIS_HASH = "0" * 64
MAX_PAYLOAD_BYTES = 64 * 1024
_KIND = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def canonical_json(value: Any) -> str:
    """The one serialisation the chain hashes; raises TypeError/ValueError for non-JSON values."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def normalise_payload(payload: object) -> tuple[dict[str, Any], str]:
    """The payload as it will read back from the store, and its canonical JSON text.

    Round-tripping through JSON first means the hash written now equals the hash recomputed from a later
    read (tuples become lists, int keys become strings), so a fresh chain always verifies.
    """
    if not isinstance(payload, dict):
        raise StoreInputError(f"an audit payload must be a dict, got {type(payload).__name__}")
    try:
        normalised = json.loads(canonical_json(payload))
        text = canonical_json(normalised)
        size = len(text.encode("utf-8"))
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise StoreInputError(
            f"the audit payload is not JSON-serialisable ({exc}); use str/int/float/bool/None, lists and "
            "dicts with str keys, and encode bytes as hex"
        ) from None
    if size > MAX_PAYLOAD_BYTES:
        raise StoreInputError(
            f"the audit payload is {size} bytes of JSON, over the {MAX_PAYLOAD_BYTES}-byte limit; "
            "log ids and digests (e.g. a text's SHA-256), never whole texts"
        )
    return normalised, text


def check_kind(kind: object) -> str:
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise StoreInputError(
            f"audit kind {kind!r} is invalid: use 1..64 of a-z, 0-9, '_', '.', '-' (e.g. 'seed_issued')"
        )
    return kind


def entry_hash(prev_hash: str, index: int, timestamp: float, kind: str, payload: dict[str, Any]) -> str:
    """The hash an entry with these fields must carry (raises ValueError if prev_hash is not 64 hex)."""
    if not _HEX64.fullmatch(prev_hash):
        raise ValueError(f"prev_hash {prev_hash!r} is not 64 lower-case hex digits")
    body = canonical_json([index, timestamp, kind, payload]).encode("utf-8")
    return hashlib.sha256(bytes.fromhex(prev_hash) + body).hexdigest()


def make_entry(
    index: int, prev_hash: str, kind: str, payload: object, timestamp: float | None, now: float
) -> tuple[AuditEntry, str]:
    """Validate an append and build the entry that follows ``prev_hash``; also returns the payload text to
    store. Stores call this while holding the chain-head lock."""
    kind = check_kind(kind)
    ts = check_time("timestamp", now if timestamp is None else timestamp)
    normalised, text = normalise_payload(payload)
    digest = entry_hash(prev_hash, index, ts, kind, normalised)
    return AuditEntry(index, ts, kind, normalised, prev_hash, digest), text


def parse_payload(text: str) -> dict[str, Any]:
    """A stored payload read back. A damaged one is returned wrapped, so the chain check can name its entry
    instead of the read failing."""
    try:
        value = json.loads(text)
    except ValueError:
        return {"_unparseable_payload": text}
    return value if isinstance(value, dict) else {"_unparseable_payload": text}


@dataclass(frozen=True)
class ChainCheck:
    """The result of walking a chain: ok, or the first bad index and why."""

    ok: bool
    checked: int
    head_hash: str
    first_bad_index: int | None = None
    reason: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"audit chain ok: {self.checked} entries, head {self.head_hash}"
        return f"audit chain broken at entry {self.first_bad_index}: {self.reason} ({self.checked} verified)"


def verify_chain(
    entries: Iterable[AuditEntry], *, start_index: int = 0, prev_hash: str = GENESIS_HASH
) -> ChainCheck:
    """Walk entries in order and stop at the first that is out of place or does not hash correctly.

    ``start_index``/``prev_hash`` let a caller resume from an entry it already trusts (e.g. a signed head).
    """
    expected, prev, checked = start_index, prev_hash, 0

    def bad(index: int, reason: str) -> ChainCheck:
        return ChainCheck(False, checked, prev, index, reason)

    for entry in entries:
        if entry.index != expected:
            return bad(expected, f"index gap: expected entry {expected}, found entry {entry.index}")
        if entry.prev_hash != prev:
            return bad(
                expected, f"wrong prev_hash: it is {entry.prev_hash!r}, the previous entry hashes to {prev}"
            )
        if not isinstance(entry.timestamp, float) or not math.isfinite(entry.timestamp):
            return bad(expected, f"timestamp {entry.timestamp!r} is not a finite float")
        try:
            recomputed = entry_hash(prev, entry.index, entry.timestamp, entry.kind, entry.payload)
        except (TypeError, ValueError) as exc:
            return bad(expected, f"entry cannot be hashed ({exc})")
        if recomputed != entry.entry_hash:
            return bad(
                expected,
                f"wrong entry_hash: stored {entry.entry_hash!r}, contents hash to {recomputed} "
                "(the entry was changed after it was written)",
            )
        prev, expected, checked = entry.entry_hash, expected + 1, checked + 1
    return ChainCheck(True, checked, prev)


def iter_audit(store: TTPStore, *, start: int = 0, page_size: int = 1000) -> Iterator[AuditEntry]:
    """Every entry from ``start`` on, fetched page by page."""
    page_size = min(page_size, MAX_AUDIT_PAGE)
    while True:
        page = store.read_audit(start, page_size)
        yield from page
        if len(page) < page_size:
            return
        start = page[-1].index + 1


def verify_store(store: TTPStore, *, page_size: int = 1000) -> ChainCheck:
    """Verify a store's whole chain, and that it holds as many entries as it says it has."""
    check = verify_chain(iter_audit(store, page_size=page_size))
    length = store.audit_length()
    if check.ok and check.checked != length:
        return ChainCheck(
            False,
            check.checked,
            check.head_hash,
            check.checked,
            f"the store reports {length} entries but the chain ends after {check.checked}",
        )
    return check
