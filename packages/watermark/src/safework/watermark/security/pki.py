"""A tiny certificate authority for the CredID services: the production proposal runs mTLS on every link.

Every party (TTP, vendor, client, admin) gets a certificate signed by one CA; the certificate's subject says
who it is (CN) and in what role (OU), so a server learns both from the TLS handshake alone
(:func:`peer_identity`) and needs no separate login. Keys are ECDSA P-256: the gRPC build in use
(BoringSSL) refuses Ed25519 TLS certificates (NO_COMMON_SIGNATURE_ALGORITHMS), so Ed25519 is used only for
application-level signatures (:mod:`safework.watermark.security.signing`).

Layout of a PKI folder: ``ca.pem``/``ca.key`` and ``<name>.pem``/``<name>.key`` per issued party. Keys are
written 0600; nothing is replaced unless asked, and every target is checked before the first is written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from safework.core.errors import ConfigError, SafeworkError
from safework.core.rpc.tls import ClientTls, TlsConfig
from safework.watermark.security._files import write_files

Role = Literal["ttp", "vendor", "client", "admin"]
ROLES: tuple[Role, ...] = ("ttp", "vendor", "client", "admin")
ORGANIZATION = "safework-credid"
CA_CERT = "ca.pem"
CA_KEY = "ca.key"
DEFAULT_HOSTS = ("127.0.0.1", "localhost")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_BACKDATE = dt.timedelta(minutes=5)  # tolerate small clock differences between the parties


class PkiError(ConfigError):
    """A PKI file is missing, unreadable, would be overwritten, or an argument cannot make a certificate."""


class PeerIdentityError(SafeworkError):
    """The caller of an RPC presented no usable safework certificate (plain channel, or a foreign cert)."""


@dataclass(frozen=True)
class CaFiles:
    """What :func:`init_ca` wrote."""

    cert: Path
    key: Path
    common_name: str
    fingerprint_sha256: str
    not_valid_after: dt.datetime


@dataclass(frozen=True)
class IssuedFiles:
    """What :func:`issue` wrote."""

    cert: Path
    key: Path
    name: str
    role: Role
    hosts: tuple[str, ...]
    fingerprint_sha256: str
    not_valid_after: dt.datetime


@dataclass(frozen=True)
class PeerIdentity:
    """Who is calling and in what role, read from the certificate the TLS handshake verified."""

    name: str
    role: Role
    fingerprint_sha256: str


def fingerprint(cert: x509.Certificate) -> str:
    """Hex SHA-256 of the DER certificate: the value operators compare out of band."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _check_days(days: int) -> None:
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise PkiError(f"days must be a whole number of days >= 1, got {days!r}.")


def _folder(folder: str | Path) -> Path:
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise PkiError(f"PKI folder {path} is a file; pass a directory (it is created if missing).")
    return path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_pair(
    cert_path: Path, key_path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, overwrite: bool
) -> None:
    pem = cert.public_bytes(serialization.Encoding.PEM)
    files = [(cert_path, pem, 0o644), (key_path, _key_pem(key), 0o600)]
    write_files(files, overwrite=overwrite, error=PkiError, flag="--overwrite (overwrite=True)")


def _name(common_name: str, role: Role | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if role is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role))
    attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION))
    return x509.Name(attributes)


def init_ca(
    folder: str | Path, *, common_name: str = "safework-credid-ca", days: int = 3650, overwrite: bool = False
) -> CaFiles:
    """Create a CA (``ca.pem``, ``ca.key``) in ``folder``; it signs leaf certificates only (path length 0)."""
    _check_days(days)
    if not common_name.strip() or len(common_name) > 64:
        raise PkiError(f"the CA common name must be 1 to 64 characters, got {common_name!r}.")
    path = _folder(folder)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    files = CaFiles(path / CA_CERT, path / CA_KEY, common_name, fingerprint(cert), cert.not_valid_after_utc)
    _write_pair(files.cert, files.key, cert, key, overwrite)
    return files


def _read(path: Path, folder: Path) -> bytes:
    if not path.is_file():
        raise PkiError(
            f"{path} does not exist; create the CA first with `safework watermark pki init --dir {folder}`."
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PkiError(f"{path} cannot be read ({exc.strerror}); fix its permissions.") from exc


def load_ca(folder: str | Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The CA certificate and key from ``folder``, checked to belong together and to be a P-256 CA."""
    path = _folder(folder)
    cert_path, key_path = path / CA_CERT, path / CA_KEY
    cert_data, key_data = _read(cert_path, path), _read(key_path, path)
    try:
        cert = x509.load_pem_x509_certificate(cert_data)
    except ValueError as exc:
        raise PkiError(
            f"{cert_path} is not a PEM certificate ({exc}); re-create the CA with `pki init`."
        ) from exc
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except (ValueError, TypeError) as exc:
        raise PkiError(
            f"{key_path} is not an unencrypted PEM private key ({exc}); re-create the CA with `pki init`."
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise PkiError(f"{key_path} is not an ECDSA P-256 key; re-create the CA with `pki init`.")
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        raise PkiError(
            f"{key_path} does not belong to {cert_path}; restore the matching pair or re-create both."
        )
    return cert, key


def _san(hosts: Iterable[str]) -> tuple[tuple[str, ...], list[x509.GeneralName]]:
    if isinstance(hosts, str):
        hosts = (hosts,)
    names: list[x509.GeneralName] = []
    seen: list[str] = []
    for raw in hosts:
        host = str(raw).strip()
        if host in seen:
            continue
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if len(host) > 253 or not _DNS.fullmatch(host):
                raise PkiError(
                    f"host {raw!r} is neither an IP address nor a DNS name; pass e.g. --host 10.0.0.5 or "
                    "--host ttp.example.org."
                ) from None
            names.append(x509.DNSName(host.lower()))
        seen.append(host)
    return tuple(seen), names


def issue(
    folder: str | Path,
    name: str,
    *,
    role: Role,
    hosts: Iterable[str] = DEFAULT_HOSTS,
    days: int = 825,
    overwrite: bool = False,
) -> IssuedFiles:
    """Issue ``<name>.pem``/``<name>.key`` signed by the CA in ``folder``, usable as server and client.

    ``hosts`` become the subject alternative names a client checks when it connects to this party
    (IP SANs for addresses, DNS SANs otherwise); the role is recorded in the subject's OU.
    """
    if role not in ROLES:
        raise PkiError(f"role must be one of {', '.join(ROLES)}; got {role!r}.")
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.lower() == "ca":
        raise PkiError(
            f"name {name!r} cannot name a certificate: use 1-64 letters, digits, '.', '_' or '-', starting "
            "with a letter or digit, and not 'ca' (e.g. --name vendor-a)."
        )
    _check_days(days)
    path = _folder(folder)
    host_list, san = _san(hosts)
    ca_cert, ca_key = load_ca(path)
    now = dt.datetime.now(dt.UTC)
    not_after = now + dt.timedelta(days=days)
    if not_after > ca_cert.not_valid_after_utc:
        raise PkiError(
            f"a {days}-day certificate would outlive the CA in {path} (valid until "
            f"{ca_cert.not_valid_after_utc:%Y-%m-%d}); pass fewer --days or re-create the CA."
        )
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name, role))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    files = IssuedFiles(
        path / f"{name}.pem", path / f"{name}.key", name, role, host_list, fingerprint(cert), not_after
    )
    _write_pair(files.cert, files.key, cert, key, overwrite)
    return files


def server_tls(folder: str | Path, name: str) -> TlsConfig:
    """mTLS server settings for party ``name`` of a PKI folder: its certificate; only this CA's clients."""
    path = Path(folder)
    return TlsConfig(path / f"{name}.pem", path / f"{name}.key", path / CA_CERT, require_client_auth=True)


def client_tls(folder: str | Path, name: str, *, server_name: str | None = None) -> ClientTls:
    """mTLS client settings for party ``name`` of a PKI folder: trust this CA only, show its certificate."""
    path = Path(folder)
    return ClientTls(path / CA_CERT, path / f"{name}.pem", path / f"{name}.key", server_name=server_name)


def identity_from_pem(pem: bytes) -> PeerIdentity:
    """Name, role and fingerprint from a certificate this PKI issued."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise PeerIdentityError(f"the peer certificate cannot be parsed ({exc}); reissue it.") from exc
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    units = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    name = str(names[0].value) if names else ""
    role = str(units[0].value) if units else ""
    if not name or role not in ROLES:
        raise PeerIdentityError(
            f"the peer certificate (subject {cert.subject.rfc4514_string()!r}) names no safework party and "
            f"role (CN plus OU one of {', '.join(ROLES)}); issue it with `safework watermark pki issue`."
        )
    return PeerIdentity(name, cast(Role, role), fingerprint(cert))


def peer_identity(context: grpc.ServicerContext) -> PeerIdentity:
    """Who is calling: the client certificate gRPC verified for this call (mTLS servers only)."""
    auth: Mapping[str, Any] = context.auth_context() or {}
    certs = list(auth.get("x509_pem_cert") or ())
    if not certs:
        raise PeerIdentityError(
            "this call carries no verified client certificate: the server must run mTLS "
            "(TlsConfig(..., client_ca_file=CA, require_client_auth=True), e.g. pki.server_tls(...)) and the "
            "client must connect with its certificate (pki.client_tls(...))."
        )
    return identity_from_pem(bytes(certs[0]))
