"""Records ↔ table rows, shared by the SQLite and PostgreSQL stores so both lay data out identically.

Seeds are unsigned 64-bit but both databases only have signed 64-bit integers, so a seed is stored as the
signed integer with the same 64 bits (two's complement): unique, indexable, and exactly reversible.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from safework.watermark.ttp.audit import parse_payload
from safework.watermark.ttp.store import (
    AuditEntry,
    GrantRecord,
    IdentityMessage,
    StoreConflict,
    StoreError,
    StoreInputError,
    UnknownVendorError,
    VendorRecord,
)

META_FORMAT = "safework-ttp"
SCHEMA_VERSION = 1
TTP_TABLES = ("ttp_meta", "ttp_vendors", "ttp_grants", "ttp_nonces", "ttp_audit")

VENDOR_COLUMNS = (
    "vendor_id, display_name, public_keys, model_ids, scheme, scheme_version, endpoint, cert_fingerprint, "
    "registered_at"
)
GRANT_COLUMNS = (
    "grant_id, seed, vendor_id, model_id, model_version, time_bucket, extra_info, issued_at, signature"
)
AUDIT_COLUMNS = "idx, ts, kind, payload, prev_hash, entry_hash"


def seed_to_sql(seed: int) -> int:
    return seed - (1 << 64) if seed >= 1 << 63 else seed


def seed_from_sql(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def vendor_to_row(record: VendorRecord) -> tuple[Any, ...]:
    keys = json.dumps([[key_id, raw.hex()] for key_id, raw in record.public_keys])
    return (
        record.vendor_id,
        record.display_name,
        keys,
        json.dumps(list(record.model_ids)),
        record.scheme,
        record.scheme_version,
        record.endpoint,
        record.cert_fingerprint,
        record.registered_at,
    )


def vendor_from_row(row: Sequence[Any]) -> VendorRecord:
    try:
        keys = tuple((str(k), bytes.fromhex(h)) for k, h in json.loads(row[2]))
        return VendorRecord(
            row[0], row[1], keys, tuple(json.loads(row[3])), row[4], row[5], row[6], row[7], float(row[8])
        )
    except (StoreInputError, ValueError, TypeError) as exc:
        raise StoreError(f"vendor row {row[0]!r} in the TTP database is damaged ({exc})") from None


def grant_to_row(record: GrantRecord) -> tuple[Any, ...]:
    ident = record.identity
    return (
        record.grant_id,
        seed_to_sql(record.seed),
        ident.vendor_id,
        ident.model_id,
        ident.model_version,
        ident.time_bucket,
        ident.extra_info,
        record.issued_at,
        record.signature,
    )


def grant_from_row(row: Sequence[Any]) -> GrantRecord:
    try:
        identity = IdentityMessage(row[2], row[3], row[4], int(row[5]), row[6])
        return GrantRecord(row[0], identity, seed_from_sql(int(row[1])), float(row[7]), bytes(row[8]))
    except (StoreInputError, ValueError, TypeError) as exc:
        raise StoreError(f"grant row {row[0]!r} in the TTP database is damaged ({exc})") from None


def audit_from_row(row: Sequence[Any]) -> AuditEntry:
    return AuditEntry(
        int(row[0]), float(row[1]), str(row[2]), parse_payload(row[3]), str(row[4]), str(row[5])
    )


def schema_problem(found: dict[str, str], where: str) -> str | None:
    """Why a database's meta table rules it out, or None when it is a TTP database this code can use."""
    if found.get("format") != META_FORMAT:
        return (
            f"{where} is not a safework TTP database (its ttp_meta table has format "
            f"{found.get('format')!r}); point the TTP at its own database file or an empty database"
        )
    try:
        version = int(found.get("schema_version", ""))
    except ValueError:
        return f"{where} has an unreadable schema version {found.get('schema_version')!r}; it is damaged"
    if version > SCHEMA_VERSION:
        return (
            f"{where} has TTP schema version {version}, newer than this safework understands "
            f"({SCHEMA_VERSION}); upgrade safework-watermark"
        )
    return None


def grant_conflict(record: GrantRecord, seed_clash: bool, other: str) -> StoreConflict:
    if seed_clash:
        return StoreConflict(
            f"seed {record.seed} is already bound to grant {other!r}; a seed must map to exactly one "
            "identity, so derive a new seed (e.g. with a fresh nonce) and retry"
        )
    return StoreConflict(f"grant id {record.grant_id!r} already exists; generate a new grant id and retry")


def unknown_vendor(record: GrantRecord) -> UnknownVendorError:
    return UnknownVendorError(
        f"grant {record.grant_id!r} names vendor {record.vendor_id!r}, which is not registered; "
        "register the vendor (add_vendor) before issuing it seeds"
    )
