"""Ed25519 signing keys and signed requests: each way a request can be wrong is refused with its own error."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest

from safework.core.rpc.gen.verifier.v1 import verifier_pb2 as pb
from safework.watermark.security.pki import init_ca, issue
from safework.watermark.security.replay import MemoryReplayGuard
from safework.watermark.security.signing import (
    DOMAIN_TAG,
    BadSignatureError,
    MalformedKeyError,
    NonceError,
    ReplayError,
    SignatureError,
    SignedHeader,
    SignerMismatchError,
    SigningKey,
    SigningKeyFileError,
    TimestampError,
    UnknownKeyError,
    check_request,
    envelope_bytes,
    key_id_of,
    message_body,
    sign_request,
    verify,
)

METHOD = "/safework.watermark.v1.TtpService/RequestSeed"
NOW = 1_750_000_000.0


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def guard() -> MemoryReplayGuard:
    return MemoryReplayGuard(60.0, clock=lambda: NOW)


def _keys(key: SigningKey) -> dict[str, bytes]:
    return {key.key_id: key.public_bytes()}


def test_key_round_trip_through_a_0600_file(tmp_path: Path, key: SigningKey) -> None:
    path = key.save(tmp_path / "keys" / "vendor-a.ed25519")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = SigningKey.load(path)
    assert loaded.public_bytes() == key.public_bytes() and len(key.public_bytes()) == 32
    assert loaded.key_id == key.key_id == key_id_of(key.public_bytes())
    assert len(key.key_id) == 16 and int(key.key_id, 16) >= 0
    assert verify(key.public_bytes(), b"data", loaded.sign(b"data"))
    assert key.key_id in repr(key) and "PRIVATE" not in repr(key)
    with pytest.raises(SigningKeyFileError, match=r"vendor-a.ed25519 already exists; pass --overwrite"):
        SigningKey.generate().save(path)
    SigningKey.generate().save(path, overwrite=True)
    assert SigningKey.load(path).key_id != key.key_id


def test_load_errors_name_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyFileError, match=r"missing.pem does not exist; create one with `safework"):
        SigningKey.load(tmp_path / "missing.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    with pytest.raises(SigningKeyFileError, match=r"junk.pem is not an unencrypted PEM private key"):
        SigningKey.load(junk)
    init_ca(tmp_path)
    issue(tmp_path, "ttp", role="ttp")
    with pytest.raises(SigningKeyFileError, match=r"not an Ed25519 key; TLS keys"):
        SigningKey.load(tmp_path / "ttp.key")


def test_verify_returns_false_on_bad_signatures_and_raises_on_bad_keys(key: SigningKey) -> None:
    signature = key.sign(b"payload")
    assert verify(key.public_bytes(), b"payload", signature)
    assert not verify(key.public_bytes(), b"payload!", signature)
    assert not verify(key.public_bytes(), b"payload", signature[:-1] + bytes([signature[-1] ^ 1]))
    assert not verify(key.public_bytes(), b"payload", signature[:10])
    assert not verify(key.public_bytes(), b"payload", b"")
    assert not verify(SigningKey.generate().public_bytes(), b"payload", signature)
    for bad in (b"", key.public_bytes()[:31], key.public_bytes() + b"\0", "ab" * 32):
        with pytest.raises(MalformedKeyError, match=r"Ed25519 public key is 32 raw bytes"):
            verify(bad, b"payload", signature)  # type: ignore[arg-type]


def test_envelope_is_unambiguous_and_tagged() -> None:
    base = envelope_bytes("m", b"body", b"n" * 16, 5, "vendor-a")
    assert base.startswith(len(DOMAIN_TAG).to_bytes(8, "big") + DOMAIN_TAG)
    variants = [
        envelope_bytes("mb", b"ody", b"n" * 16, 5, "vendor-a"),  # bytes moved between fields
        envelope_bytes("m", b"body", b"n" * 16, 5, "vendor-b"),
        envelope_bytes("m", b"body", b"n" * 16, 6, "vendor-a"),
        envelope_bytes("m", b"body", b"N" * 16, 5, "vendor-a"),
        envelope_bytes("m", b"bodyvendor-a", b"n" * 16, 5, ""),
    ]
    assert len({base, *variants}) == 1 + len(variants)
    assert envelope_bytes("m", b"body", b"n" * 16, 5, "vendor-a") == base
    with pytest.raises(ValueError, match="non-negative int"):
        envelope_bytes("m", b"", b"n" * 16, -1, "v")
    with pytest.raises(TypeError, match="deterministic=True"):
        envelope_bytes("m", "text", b"n" * 16, 1, "v")  # type: ignore[arg-type]


def test_signed_request_is_accepted_once(key: SigningKey, guard: MemoryReplayGuard) -> None:
    header = sign_request(key, METHOD, b"body", "vendor-a", now=NOW)
    assert len(header.nonce) == 16 and header.timestamp_ms == int(NOW * 1000) and header.key_id == key.key_id
    check_request(header, METHOD, b"body", _keys(key), guard, now=NOW + 1, expected_signer="vendor-a")
    with pytest.raises(ReplayError, match=r"already used.*sign every request afresh"):
        check_request(header, METHOD, b"body", _keys(key), guard, now=NOW + 2)
    fresh = sign_request(key, METHOD, b"body", "vendor-a", now=NOW)
    assert fresh.nonce != header.nonce
    check_request(fresh, METHOD, b"body", _keys(key), guard, now=NOW)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ("body", BadSignatureError, r"does not match this .*RequestSeed request.*deterministic=True"),
        ("method", BadSignatureError, r"does not match this /x/Other request"),
        ("timestamp", BadSignatureError, r"does not match"),
        ("signer", BadSignatureError, r"signature from 'vendor-b'"),
        ("nonce", BadSignatureError, r"does not match"),
        ("signature", BadSignatureError, r"does not match"),
        ("unknown key", UnknownKeyError, r"key id '[0-9a-f]{16}' is not registered for 'vendor-a'"),
        ("short nonce", NonceError, r"nonce must be 16 random bytes, got 8"),
        ("stale", TimestampError, r"signed 31.0 s ago, more than the allowed 30 s.*NTP"),
        ("future", TimestampError, r"31.0 s in the future, more than the allowed 30 s"),
        ("expected signer", SignerMismatchError, r"signed as 'vendor-a' but the authenticated caller is 'x'"),
    ],
)
def test_each_failure_has_its_own_error(
    key: SigningKey, guard: MemoryReplayGuard, change: str, error: type[SignatureError], message: str
) -> None:
    header = sign_request(key, METHOD, b"body", "vendor-a", now=NOW)
    method, body, now, keys, expected = METHOD, b"body", NOW, _keys(key), None
    if change == "body":
        body = b"bodY"
    elif change == "method":
        method = "/x/Other"
    elif change == "timestamp":
        header = dataclasses.replace(header, timestamp_ms=header.timestamp_ms + 1)
    elif change == "signer":
        header = dataclasses.replace(header, signer_id="vendor-b")
    elif change == "nonce":
        header = dataclasses.replace(header, nonce=bytes(16))
    elif change == "signature":
        header = dataclasses.replace(header, signature=SigningKey.generate().sign(b"x"))
    elif change == "unknown key":
        keys = {"0" * 16: key.public_bytes()}
    elif change == "short nonce":
        header = dataclasses.replace(header, nonce=bytes(8))
    elif change == "stale":
        now = NOW + 31
    elif change == "future":
        now = NOW - 31
    elif change == "expected signer":
        expected = "x"
    with pytest.raises(error, match=message):
        check_request(header, method, body, keys, guard, now=now, expected_signer=expected)
    assert len(guard) == 0  # nothing refused is remembered


def test_forged_request_does_not_burn_the_real_nonce(key: SigningKey, guard: MemoryReplayGuard) -> None:
    real = sign_request(key, METHOD, b"body", "vendor-a", now=NOW)
    forged = dataclasses.replace(real, signature=bytes(64))
    with pytest.raises(BadSignatureError):
        check_request(forged, METHOD, b"body", _keys(key), guard, now=NOW)
    check_request(real, METHOD, b"body", _keys(key), guard, now=NOW)


def test_skew_boundary_and_custom_skew(key: SigningKey, guard: MemoryReplayGuard) -> None:
    header = sign_request(key, METHOD, b"", "vendor-a", now=NOW)
    check_request(header, METHOD, b"", _keys(key), guard, now=NOW + 30)
    other = sign_request(key, METHOD, b"", "vendor-a", now=NOW)
    with pytest.raises(TimestampError, match="allowed 5 s"):
        check_request(other, METHOD, b"", _keys(key), guard, now=NOW + 6, max_skew_s=5)


def test_message_body_clears_the_signature_field_deterministically() -> None:
    request = pb.ScoreRequest(request_id="sig", verifiers=["a", "b"])
    request.items.add(item_id="x", prompt="p", metadata={"k2": "2", "k1": "1"})
    body = message_body(request, "request_id")
    assert request.request_id == "sig"  # the caller's message is left alone
    cleared = pb.ScoreRequest()
    cleared.CopyFrom(request)
    cleared.request_id = ""
    assert body == cleared.SerializeToString(deterministic=True)
    assert pb.ScoreRequest.FromString(body).request_id == ""


def test_signed_header_is_a_plain_value() -> None:
    header = SignedHeader("v", "k", b"n" * 16, 1, b"s")
    assert dataclasses.asdict(header)["signer_id"] == "v"
    with pytest.raises(dataclasses.FrozenInstanceError):
        header.signer_id = "w"  # type: ignore[misc]
