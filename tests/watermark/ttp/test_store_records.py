"""Records validate themselves at the boundary; the identity message has one unambiguous byte form; the
chain check names the first bad entry and why."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from safework.core.errors import SafeworkError
from safework.watermark.ttp.audit import (
    GENESIS_HASH,
    canonical_json,
    entry_hash,
    make_entry,
    verify_chain,
)
from safework.watermark.ttp.store import (
    AuditEntry,
    GrantRecord,
    IdentityMessage,
    StoreConflict,
    StoreError,
    StoreInputError,
    VendorRecord,
)


def _vendor(**changes: Any) -> VendorRecord:
    fields: dict[str, Any] = {
        "vendor_id": "acme-ai",
        "display_name": "Acme",
        "public_keys": [["k1", bytearray(32)]],
        "model_ids": ["m1"],
        "scheme": "credid",
        "scheme_version": "1",
        "endpoint": "acme.example:443",
        "cert_fingerprint": "",
        "registered_at": 1,
    }
    fields.update(changes)
    return VendorRecord(**fields)


def test_errors_belong_to_the_safework_hierarchy() -> None:
    assert issubclass(StoreConflict, StoreError) and issubclass(StoreInputError, StoreError)
    assert issubclass(StoreError, SafeworkError)


def test_vendor_lists_become_tuples_so_records_compare_by_value() -> None:
    v = _vendor()
    assert v.public_keys == (("k1", bytes(32)),) and v.model_ids == ("m1",)
    assert isinstance(v.registered_at, float)
    assert v == _vendor(public_keys=(("k1", bytes(32)),), model_ids=("m1",), registered_at=1.0)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"vendor_id": "Acme"}, "vendor_id 'Acme' is invalid"),
        ({"vendor_id": "a" * 65}, "vendor_id"),
        ({"vendor_id": ""}, "vendor_id"),
        ({"display_name": "x" * 201}, "display_name must be 1..200"),
        ({"display_name": "bad\x00name"}, "control characters"),
        ({"public_keys": [("k1", bytes(31))]}, "must be 32..32 bytes"),
        ({"public_keys": [("k1", bytes(32)), ("k1", bytes(32))]}, "repeats a key_id"),
        ({"public_keys": [("k 1", bytes(32))]}, "key_id"),
        ({"public_keys": [("k1", "00" * 32)]}, "must be bytes"),
        ({"model_ids": ["m1", "m1"]}, "repeats a model id"),
        ({"endpoint": "acme.example"}, "host:port"),
        ({"endpoint": "acme.example:99999"}, "host:port"),
        ({"endpoint": ":443"}, "host:port"),
        ({"cert_fingerprint": "AB" * 32}, "cert_fingerprint"),
        ({"registered_at": float("nan")}, "registered_at"),
        ({"registered_at": "yesterday"}, "registered_at"),
    ],
)
def test_bad_vendor_fields_are_named(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(StoreInputError, match=problem):
        _vendor(**changes)


def test_ipv6_endpoints_are_accepted() -> None:
    assert _vendor(endpoint="[2001:db8::1]:8443").endpoint == "[2001:db8::1]:8443"


def test_identity_bytes_are_deterministic_and_unambiguous() -> None:
    a = IdentityMessage("acme", "ab", "c", 7)
    assert a.canonical_bytes() == IdentityMessage("acme", "ab", "c", 7).canonical_bytes()
    assert a.canonical_bytes() != IdentityMessage("acme", "a", "bc", 7).canonical_bytes()
    assert a.canonical_bytes() != IdentityMessage("acme", "ab", "c", 8).canonical_bytes()
    assert a.canonical_bytes() != IdentityMessage("acme", "ab", "c", 7, extra_info="x").canonical_bytes()
    assert a.canonical_bytes().startswith(b"\x00\x00\x00\x1bsafework.credid.identity.v1")


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("acme", "m", "1", -1), "time_bucket"),
        (("acme", "m", "1", True), "time_bucket must be an int"),
        (("acme", "", "1", 0), "model_id"),
        (("acme", "m", "1", 0, "x" * 257), "extra_info"),
    ],
)
def test_bad_identity_fields_are_named(args: tuple[Any, ...], problem: str) -> None:
    with pytest.raises(StoreInputError, match=problem):
        IdentityMessage(*args)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"seed": 2**64}, "seed must be an int in 0..2\\*\\*64-1"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.0}, "seed"),
        ({"grant_id": ""}, "grant_id"),
        ({"signature": b"x" * 1025}, "signature"),
        ({"identity": "acme"}, "identity must be an IdentityMessage"),
    ],
)
def test_bad_grant_fields_are_named(changes: dict[str, Any], problem: str) -> None:
    fields: dict[str, Any] = {
        "grant_id": "g1",
        "identity": IdentityMessage("acme", "m", "1", 0),
        "seed": 5,
        "issued_at": 1.0,
        "signature": b"",
    }
    with pytest.raises(StoreInputError, match=problem):
        GrantRecord(**{**fields, **changes})


# -- the chain ---------------------------------------------------------------------------------------------


def _chain(n: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    prev = GENESIS_HASH
    for i in range(n):
        entry, _ = make_entry(i, prev, "seed_issued", {"i": i, "tags": ("a", "b")}, None, 1000.0 + i)
        entries.append(entry)
        prev = entry.entry_hash
    return entries


def test_the_hash_is_the_documented_formula() -> None:
    import hashlib

    entry = _chain(1)[0]
    body = canonical_json([0, 1000.0, "seed_issued", {"i": 0, "tags": ["a", "b"]}]).encode()
    assert body == b'[0,1000.0,"seed_issued",{"i":0,"tags":["a","b"]}]'
    assert entry.entry_hash == hashlib.sha256(bytes(32) + body).hexdigest()
    assert entry.payload == {"i": 0, "tags": ["a", "b"]}  # normalised as it will read back


def test_a_good_chain_verifies_and_can_be_resumed() -> None:
    entries = _chain(6)
    check = verify_chain(entries)
    assert check.ok and check.checked == 6 and check.head_hash == entries[-1].entry_hash
    assert "ok: 6 entries" in str(check)
    resumed = verify_chain(entries[3:], start_index=3, prev_hash=entries[2].entry_hash)
    assert resumed.ok and resumed.checked == 3
    assert verify_chain([]).ok and verify_chain([]).head_hash == GENESIS_HASH


@pytest.mark.parametrize(
    ("damage", "bad_index", "reason"),
    [
        (lambda e: e[:2] + e[3:], 2, "index gap: expected entry 2, found entry 3"),
        (lambda e: [e[1], *e], 0, "index gap: expected entry 0, found entry 1"),
        (lambda e: [*e[:4], dataclasses.replace(e[4], payload={"i": 40})], 4, "wrong entry_hash"),
        (lambda e: [*e[:4], dataclasses.replace(e[4], timestamp=1.0)], 4, "wrong entry_hash"),
        (lambda e: [*e[:4], dataclasses.replace(e[4], timestamp=1)], 4, "not a finite float"),
        (lambda e: [*e[:4], dataclasses.replace(e[4], prev_hash="f" * 64)], 4, "wrong prev_hash"),
        (lambda e: [*e[:1], dataclasses.replace(e[1], payload={"x": {1, 2}})], 1, "cannot be hashed"),
    ],
)
def test_the_first_bad_entry_is_named_with_the_reason(damage: Any, bad_index: int, reason: str) -> None:
    check = verify_chain(damage(_chain(6)))
    assert not check.ok
    assert check.first_bad_index == bad_index and reason in check.reason
    assert check.checked == bad_index
    assert f"broken at entry {bad_index}" in str(check)


def test_entry_hash_rejects_a_malformed_prev_hash() -> None:
    with pytest.raises(ValueError, match="64 lower-case hex"):
        entry_hash("zz", 0, 0.0, "k", {})
