"""Certificates from ``security.pki`` on real gRPC servers over 127.0.0.1: mTLS works, strangers are refused,
and the server reads the caller's name and role from the handshake."""

from __future__ import annotations

import ipaddress
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from safework.core.rpc import ClientTls, RunningServer, TlsConfig, build_server, check_health, connect
from safework.watermark.security.pki import (
    CA_CERT,
    PeerIdentityError,
    PkiError,
    client_tls,
    identity_from_pem,
    init_ca,
    issue,
    peer_identity,
    server_tls,
)

SERVICE = "safework.test.Whoami"
METHOD = f"/{SERVICE}/Who"


@dataclass(frozen=True)
class Pki:
    folder: Path
    rogue: Path  # a second, unrelated CA with a client of the same name
    fingerprints: dict[str, str]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    init_ca(folder)
    fingerprints = {
        "ttp": issue(folder, "ttp", role="ttp").fingerprint_sha256,
        "vendor-a": issue(folder, "vendor-a", role="vendor").fingerprint_sha256,
        "auditor": issue(folder, "auditor", role="admin", hosts=()).fingerprint_sha256,
    }
    rogue = tmp_path_factory.mktemp("rogue-pki")
    init_ca(rogue, common_name="rogue-ca")
    issue(rogue, "vendor-a", role="vendor")
    return Pki(folder, rogue, fingerprints)


def _whoami(request: bytes, context: grpc.ServicerContext) -> bytes:
    try:
        who = peer_identity(context)
    except PeerIdentityError as exc:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
    return f"{who.name}|{who.role}|{who.fingerprint_sha256}".encode()


def _add_whoami(_: Any, server: grpc.Server) -> None:
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Who": grpc.unary_unary_rpc_method_handler(_whoami)}
    )
    server.add_generic_rpc_handlers((handler,))


def _serve(tls: TlsConfig | None) -> RunningServer:
    return build_server("127.0.0.1:0", [(_add_whoami, None, SERVICE)], tls=tls, max_workers=2)


@pytest.fixture(scope="module")
def mtls_server(pki: Pki) -> Iterator[RunningServer]:
    running = _serve(server_tls(pki.folder, "ttp"))
    yield running
    running.stop(grace=0.5)


def _call(target: str, tls: ClientTls | None) -> bytes:
    channel = connect(target, tls=tls, retries=0, default_timeout=5.0)
    try:
        return bytes(channel.unary_unary(METHOD)(b"", timeout=5))
    finally:
        channel.close()


@pytest.mark.parametrize(("name", "role"), [("vendor-a", "vendor"), ("auditor", "admin")])
def test_mtls_round_trip_reports_the_callers_name_and_role(
    pki: Pki, mtls_server: RunningServer, name: str, role: str
) -> None:
    for host in ("127.0.0.1", "localhost"):
        reply = _call(f"{host}:{mtls_server.port}", client_tls(pki.folder, name))
        assert reply.decode().split("|") == [name, role, pki.fingerprints[name]]
    channel = connect(mtls_server.target, tls=client_tls(pki.folder, name), retries=0)
    assert check_health(channel) == "SERVING"
    channel.close()


@pytest.mark.parametrize("who", ["no certificate", "certificate from another CA", "plaintext"])
def test_strangers_are_refused(pki: Pki, mtls_server: RunningServer, who: str) -> None:
    tls = {
        "no certificate": ClientTls(pki.folder / CA_CERT),
        # trusts the real server, but presents a certificate the server's CA never signed
        "certificate from another CA": ClientTls(
            pki.folder / CA_CERT, pki.rogue / "vendor-a.pem", pki.rogue / "vendor-a.key"
        ),
        "plaintext": None,
    }[who]
    with pytest.raises(grpc.RpcError) as info:
        _call(mtls_server.target, tls)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_client_refuses_a_server_from_another_ca(pki: Pki) -> None:
    rogue_server = _serve(server_tls(pki.rogue, "vendor-a"))
    try:
        with pytest.raises(grpc.RpcError) as info:
            _call(rogue_server.target, client_tls(pki.folder, "vendor-a"))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        rogue_server.stop(grace=0.5)


def test_server_name_must_be_in_the_certificate(pki: Pki, tmp_path: Path) -> None:
    init_ca(tmp_path)
    issue(tmp_path, "ttp", role="ttp", hosts=("ttp.example.org",))
    issue(tmp_path, "vendor-b", role="vendor")
    running = _serve(server_tls(tmp_path, "ttp"))
    try:
        with pytest.raises(grpc.RpcError):
            _call(running.target, client_tls(tmp_path, "vendor-b"))
        reply = _call(running.target, client_tls(tmp_path, "vendor-b", server_name="ttp.example.org"))
        assert reply.startswith(b"vendor-b|vendor|")
    finally:
        running.stop(grace=0.5)


@pytest.mark.parametrize("mode", ["plaintext", "tls without client certificates"])
def test_peer_identity_without_a_client_certificate_is_a_clear_error(pki: Pki, mode: str) -> None:
    if mode == "plaintext":
        running, tls = _serve(None), None
    else:
        server = TlsConfig(pki.folder / "ttp.pem", pki.folder / "ttp.key")
        running, tls = _serve(server), ClientTls(pki.folder / CA_CERT)
    try:
        with pytest.raises(grpc.RpcError) as info:
            _call(running.target, tls)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "no verified client certificate" in str(info.value.details())
        assert "require_client_auth=True" in str(info.value.details())
    finally:
        running.stop(grace=0.5)


def test_issued_certificate_contents(pki: Pki) -> None:
    ca = x509.load_pem_x509_certificate((pki.folder / "ca.pem").read_bytes())
    cert = x509.load_pem_x509_certificate((pki.folder / "vendor-a.pem").read_bytes())
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "vendor-a"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "vendor"
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, ec.SECP256R1)
    for key in ("ca.key", "ttp.key", "vendor-a.key"):
        assert stat.S_IMODE((pki.folder / key).stat().st_mode) == 0o600
    assert stat.S_IMODE((pki.folder / "vendor-a.pem").stat().st_mode) == 0o644
    auditor = x509.load_pem_x509_certificate((pki.folder / "auditor.pem").read_bytes())
    with pytest.raises(x509.ExtensionNotFound):
        auditor.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_identity_needs_a_role(pki: Pki) -> None:
    with pytest.raises(PeerIdentityError, match=r"names no safework party and role.*pki issue"):
        identity_from_pem((pki.folder / "ca.pem").read_bytes())
    with pytest.raises(PeerIdentityError, match="cannot be parsed"):
        identity_from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


def test_refuses_to_overwrite_and_names_the_file(tmp_path: Path) -> None:
    first = init_ca(tmp_path)
    with pytest.raises(PkiError, match=r"ca\.pem, .*ca\.key already exist; pass --overwrite"):
        init_ca(tmp_path)
    issued = issue(tmp_path, "ttp", role="ttp")
    with pytest.raises(PkiError, match=r"ttp\.pem, .*ttp\.key already exist; pass --overwrite"):
        issue(tmp_path, "ttp", role="ttp")
    again = issue(tmp_path, "ttp", role="ttp", overwrite=True)
    assert again.fingerprint_sha256 != issued.fingerprint_sha256
    assert init_ca(tmp_path, overwrite=True).fingerprint_sha256 != first.fingerprint_sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.key", "ca.pem", "ttp.key", "ttp.pem"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "../evil", "role": "ttp"}, r"cannot name a certificate"),
        ({"name": "ca", "role": "ttp"}, r"not 'ca'"),
        ({"name": "v", "role": "boss"}, r"role must be one of ttp, vendor, client, admin"),
        ({"name": "v", "role": "ttp", "hosts": ("not a host!",)}, r"neither an IP address nor a DNS name"),
        ({"name": "v", "role": "ttp", "days": 0}, r"days must be"),
        ({"name": "v", "role": "ttp", "days": 5000}, r"would outlive the CA.*fewer --days"),
    ],
)
def test_bad_issue_arguments_are_named(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    init_ca(tmp_path)
    name = kwargs.pop("name")
    with pytest.raises(PkiError, match=message):
        issue(tmp_path, name, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.key", "ca.pem"]


def test_issue_without_a_ca_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(
        PkiError, match=r"ca\.pem does not exist; create the CA first with `safework watermark"
    ):
        issue(tmp_path, "ttp", role="ttp")
    (tmp_path / "ca.pem").write_text("junk")
    (tmp_path / "ca.key").write_text("junk")
    with pytest.raises(PkiError, match=r"ca\.pem is not a PEM certificate"):
        issue(tmp_path, "ttp", role="ttp")


def test_ca_key_must_match_its_certificate(tmp_path: Path) -> None:
    init_ca(tmp_path / "a")
    init_ca(tmp_path / "b")
    (tmp_path / "a" / "ca.key").write_bytes((tmp_path / "b" / "ca.key").read_bytes())
    with pytest.raises(PkiError, match=r"ca\.key does not belong to .*ca\.pem"):
        issue(tmp_path / "a", "ttp", role="ttp")


def test_tls_settings_are_checked_by_core(tmp_path: Path) -> None:
    from safework.core.errors import ConfigError

    init_ca(tmp_path)
    with pytest.raises(ConfigError, match=r"server certificate file .*ghost\.pem does not exist"):
        server_tls(tmp_path, "ghost").credentials()
