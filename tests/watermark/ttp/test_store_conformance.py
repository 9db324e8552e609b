"""The TTP store conformance suite, written once and run against every backend (see conftest.store_kit)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from safework.watermark.ttp.audit import GENESIS_HASH, verify_chain, verify_store
from safework.watermark.ttp.store import (
    GrantRecord,
    IdentityMessage,
    StoreConflict,
    StoreError,
    StoreInputError,
    TTPStore,
    UnknownVendorError,
    VendorRecord,
)

if TYPE_CHECKING:
    from conftest import StoreKit


def vendor(vendor_id: str = "acme-ai", **changes: Any) -> VendorRecord:
    fields: dict[str, Any] = {
        "vendor_id": vendor_id,
        "display_name": f"{vendor_id} Inc.",
        "public_keys": (("k1", bytes(range(32))),),
        "model_ids": ("llama-4", "llama-4-mini"),
        "scheme": "credid",
        "scheme_version": "1",
        "endpoint": f"{vendor_id}.example:8443",
        "cert_fingerprint": "ab" * 32,
        "registered_at": 1_700_000_000.25,
    }
    fields.update(changes)
    return VendorRecord(**fields)


def grant(
    n: int, vendor_id: str = "acme-ai", *, seed: int | None = None, issued_at: float = 0.0
) -> GrantRecord:
    identity = IdentityMessage(vendor_id, "llama-4", "4.0", 480_000 + n, extra_info="eu")
    return GrantRecord(
        f"g-{vendor_id}-{n}", identity, 1000 + n if seed is None else seed, issued_at or 1e9 + n, b"s" * 64
    )


# -- vendors -----------------------------------------------------------------------------------------------


def test_vendors_round_trip_and_list_in_id_order(store: TTPStore) -> None:
    assert store.get_vendor("acme-ai") is None
    assert store.list_vendors() == []
    b, a = vendor("zeta"), vendor("acme-ai", scheme_version="", cert_fingerprint="", public_keys=())
    store.add_vendor(b)
    store.add_vendor(a)
    assert store.get_vendor("zeta") == b
    assert store.get_vendor("acme-ai") == a
    assert store.list_vendors() == [a, b]


def test_reregistration_replaces_everything_but_the_first_registration_time(store: TTPStore) -> None:
    store.add_vendor(vendor())
    rotated = vendor(
        public_keys=(("k2", b"\x07" * 32), ("k3", b"\x08" * 32)),
        endpoint="[::1]:9000",
        display_name="Acme AI",
        model_ids=["llama-5"],
        registered_at=1_800_000_000.0,
    )
    store.add_vendor(rotated)
    got = store.get_vendor("acme-ai")
    assert got is not None
    assert got.public_keys == rotated.public_keys and got.endpoint == "[::1]:9000"
    assert got.model_ids == ("llama-5",) and got.display_name == "Acme AI"
    assert got.registered_at == 1_700_000_000.25
    assert len(store.list_vendors()) == 1


# -- grants ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2**63 - 1, 2**63, 2**64 - 1])
def test_grants_are_found_by_id_seed_and_vendor(store: TTPStore, seed: int) -> None:
    store.add_vendor(vendor())
    store.add_vendor(vendor("other"))
    record = grant(1, seed=seed, issued_at=100.5)
    store.add_grant(record)
    store.add_grant(grant(2, issued_at=200.0))
    store.add_grant(grant(3, "other", issued_at=150.0))
    assert store.get_grant(record.grant_id) == record
    assert store.grant_for_seed(seed) == record
    assert store.grant_for_seed(seed ^ 0x5555) is None
    assert store.get_grant("nope") is None
    assert [g.grant_id for g in store.grants_for_vendor("acme-ai")] == ["g-acme-ai-1", "g-acme-ai-2"]
    assert [g.grant_id for g in store.grants_for_vendor("acme-ai", since=150.0)] == ["g-acme-ai-2"]
    assert [g.grant_id for g in store.grants_for_vendor("other")] == ["g-other-3"]
    assert store.grants_for_vendor("nobody-here") == []
    assert store.count_grants() == 3


def test_grant_id_and_seed_are_unique_and_a_refused_grant_writes_nothing(store: TTPStore) -> None:
    store.add_vendor(vendor())
    store.add_vendor(vendor("other"))
    first = grant(1, seed=42)
    store.add_grant(first)
    with pytest.raises(StoreConflict, match="grant id 'g-acme-ai-1' already exists"):
        store.add_grant(grant(1, seed=43))
    with pytest.raises(StoreConflict, match="seed 42 is already bound to grant 'g-acme-ai-1'"):
        store.add_grant(grant(7, "other", seed=42))
    assert store.count_grants() == 1
    assert store.grant_for_seed(42) == first
    assert store.grant_for_seed(43) is None


def test_a_grant_for_an_unregistered_vendor_is_refused(store: TTPStore) -> None:
    with pytest.raises(UnknownVendorError, match="vendor 'ghost', which is not registered"):
        store.add_grant(grant(1, "ghost"))
    assert store.count_grants() == 0


# -- replay guard ------------------------------------------------------------------------------------------


def test_nonces_detect_replays_per_client_and_purge_by_age(store: TTPStore) -> None:
    assert store.remember_nonce("acme-ai", b"\x01" * 16, 100.0) is True
    assert store.remember_nonce("acme-ai", b"\x01" * 16, 999.0) is False
    assert store.remember_nonce("other", b"\x01" * 16, 100.0) is True
    assert store.remember_nonce("acme-ai", b"\x02" * 16, 200.0) is True
    assert store.purge_nonces(150.0) == 2
    assert store.remember_nonce("acme-ai", b"\x02" * 16, 300.0) is False
    assert store.remember_nonce("acme-ai", b"\x01" * 16, 300.0) is True


# -- audit log ---------------------------------------------------------------------------------------------


def test_audit_appends_chain_and_page(store: TTPStore) -> None:
    assert store.audit_length() == 0 and store.read_audit() == []
    first = store.append_audit("vendor_registered", {"vendor_id": "acme-ai"}, timestamp=5)
    assert first.index == 0 and first.prev_hash == GENESIS_HASH and first.timestamp == 5.0
    for i in range(1, 12):
        entry = store.append_audit("seed_issued", {"grant_id": f"g{i}", "n": [i, 1.5, None, True]})
        assert entry.index == i
    assert store.audit_length() == 12
    entries = store.read_audit(0, 100)
    assert entries[0] == first and [e.index for e in entries] == list(range(12))
    assert entries[5].payload == {"grant_id": "g5", "n": [5, 1.5, None, True]}
    assert store.read_audit(10, 5) == entries[10:]
    assert store.read_audit(3, 2) == entries[3:5]
    assert verify_chain(entries).ok
    check = verify_store(store, page_size=5)
    assert check.ok and check.checked == 12 and check.head_hash == entries[-1].entry_hash


@pytest.mark.parametrize(
    ("kind", "payload", "problem"),
    [
        ("Seed Issued", {}, "kind"),
        ("x", ["not", "a", "dict"], "must be a dict"),
        ("x", {"blob": b"\x00"}, "not JSON-serialisable"),
        ("x", {"nan": float("nan")}, "not JSON-serialisable"),
        ("x", {"text": "a" * 70_000}, "over the 65536-byte limit"),
    ],
)
def test_bad_audit_input_is_refused_and_appends_nothing(
    store: TTPStore, kind: str, payload: Any, problem: str
) -> None:
    store.append_audit("ok", {})
    with pytest.raises(StoreInputError, match=problem):
        store.append_audit(kind, payload)
    assert store.audit_length() == 1
    assert store.append_audit("ok", {}).index == 1


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("UPDATE ttp_audit SET payload = '{\"n\":999}' WHERE idx = 3", "wrong entry_hash"),
        ("UPDATE ttp_audit SET ts = ts + 1 WHERE idx = 3", "wrong entry_hash"),
        ("UPDATE ttp_audit SET kind = 'forged' WHERE idx = 3", "wrong entry_hash"),
        (f"UPDATE ttp_audit SET prev_hash = '{'1' * 64}' WHERE idx = 3", "wrong prev_hash"),
        ("DELETE FROM ttp_audit WHERE idx = 3", "index gap"),
    ],
)
def test_tampering_behind_the_store_is_found_at_its_index(
    store_kit: StoreKit, statement: str, reason: str
) -> None:
    store = store_kit.open()
    for i in range(6):
        store.append_audit("seed_issued", {"n": i})
    store_kit.sql(statement)
    check = verify_chain(store.read_audit(0, 100))
    assert not check.ok and check.first_bad_index == 3 and reason in check.reason
    assert check.checked == 3
    assert not verify_store(store).ok


def test_rewriting_an_entry_with_a_fresh_hash_breaks_the_next_one(store_kit: StoreKit) -> None:
    store = store_kit.open()
    for i in range(5):
        store.append_audit("seed_issued", {"n": i})
    original = store.read_audit(2, 1)[0]
    from safework.watermark.ttp.audit import entry_hash

    forged = entry_hash(original.prev_hash, 2, original.timestamp, original.kind, {"n": 999})
    store_kit.sql(f"UPDATE ttp_audit SET payload = '{{\"n\":999}}', entry_hash = '{forged}' WHERE idx = 2")
    check = verify_store(store)
    assert check.first_bad_index == 3 and "wrong prev_hash" in check.reason


# -- concurrency -------------------------------------------------------------------------------------------


def _run_threads(n: int, work: Any) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def body(t: int) -> None:
        try:
            barrier.wait()
            work(t)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(t,)) for t in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors


def test_concurrent_appends_and_grants_from_8_threads(store: TTPStore) -> None:
    store.add_vendor(vendor())
    per_thread = 12

    def work(t: int) -> None:
        for i in range(per_thread):
            store.append_audit("seed_issued", {"thread": t, "i": i})
            store.add_grant(grant(t * 100 + i))
            assert store.remember_nonce(f"c{t}", bytes([i + 1]) * 8, 1.0)

    _run_threads(8, work)
    entries = store.read_audit(0, 1000)
    assert [e.index for e in entries] == list(range(8 * per_thread))
    assert verify_store(store).ok
    assert store.count_grants() == 8 * per_thread
    assert sorted((e.payload["thread"], e.payload["i"]) for e in entries) == [
        (t, i) for t in range(8) for i in range(per_thread)
    ]


def test_two_store_instances_on_one_database_never_fork_the_chain(store_kit: StoreKit) -> None:
    stores = [store_kit.open(), store_kit.open()]

    def work(t: int) -> None:
        for i in range(10):
            stores[t % 2].append_audit("seed_issued", {"thread": t, "i": i})

    _run_threads(8, work)
    for s in stores:
        assert s.audit_length() == 80
        assert verify_store(s).ok


def test_racing_grants_for_one_seed_admit_exactly_one(store_kit: StoreKit) -> None:
    stores = [store_kit.open(), store_kit.open()]
    stores[0].add_vendor(vendor())
    outcomes: list[str] = []

    def work(t: int) -> None:
        try:
            stores[t % 2].add_grant(grant(t, seed=777))
            outcomes.append("ok")
        except StoreConflict:
            outcomes.append("conflict")

    _run_threads(8, work)
    assert sorted(outcomes) == ["conflict"] * 7 + ["ok"]
    assert stores[1].count_grants() == 1


# -- lifecycle ---------------------------------------------------------------------------------------------


def test_reopening_keeps_everything(store_kit: StoreKit) -> None:
    with store_kit.open() as store:
        store.add_vendor(vendor())
        store.add_grant(grant(1, seed=2**64 - 2))
        store.remember_nonce("acme-ai", b"n" * 16, 10.0)
        appended = [store.append_audit("seed_issued", {"i": i}) for i in range(4)]
    with pytest.raises(StoreError, match="closed"):
        store.count_grants()
    again = store_kit.open()
    assert again.get_vendor("acme-ai") == vendor()
    assert again.grant_for_seed(2**64 - 2) == grant(1, seed=2**64 - 2)
    assert again.remember_nonce("acme-ai", b"n" * 16, 11.0) is False
    assert again.read_audit() == appended
    assert again.append_audit("seed_issued", {"i": 4}).prev_hash == appended[-1].entry_hash
    assert verify_store(again).ok
    again.close()
    again.close()  # harmless


def test_invalid_arguments_name_the_problem(store: TTPStore) -> None:
    with pytest.raises(StoreInputError, match="vendor_id"):
        store.get_vendor("Acme AI")
    with pytest.raises(StoreInputError, match="seed"):
        store.grant_for_seed(-1)
    with pytest.raises(StoreInputError, match="limit"):
        store.read_audit(0, 0)
    with pytest.raises(StoreInputError, match="start"):
        store.read_audit(-1)
    with pytest.raises(StoreInputError, match="nonce"):
        store.remember_nonce("c", "not-bytes", 1.0)  # type: ignore[arg-type]
    with pytest.raises(StoreInputError, match="VendorRecord"):
        store.add_vendor({"vendor_id": "acme-ai"})  # type: ignore[arg-type]
    with pytest.raises(StoreInputError, match="since"):
        store.grants_for_vendor("acme-ai", since=float("inf"))
