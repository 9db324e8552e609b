"""TLS and mTLS settings for safework servers and clients, loaded from PEM files.

gRPC reports a bad certificate late and vaguely (a failed bind, or a handshake error on the first call), so
the files are checked here first and every problem names the file and the fix. The watermark protocol runs
mTLS on every link (spec/credid.md §2.4); the reward server usually runs plain TLS or none on a private
network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from safework.core.errors import ConfigError

_CERT_MARKER = b"-----BEGIN CERTIFICATE-----"
_KEY_MARKER = b"PRIVATE KEY-----"


def _read_pem(path: Path, what: str, marker: bytes) -> bytes:
    """Read a PEM file and check it holds ``what``; the error says which setting points at it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} file {path} does not exist; point the setting at an existing PEM file.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{what} file {path} cannot be read ({exc.strerror}); fix its permissions."
        ) from exc
    if marker not in data:
        kind = "a PEM certificate ('-----BEGIN CERTIFICATE-----')" if marker == _CERT_MARKER else "a PEM key"
        raise ConfigError(
            f"{what} file {path} does not contain {kind}; check that the path names the right file."
        )
    return data


def _read_cert(path: Path, what: str) -> bytes:
    data = _read_pem(path, what, _CERT_MARKER)
    _parse_certs(data, path, what)
    return data


def _read_key(path: Path, what: str) -> bytes:
    data = _read_pem(path, what, _KEY_MARKER)
    if b"ENCRYPTED" in data:
        raise ConfigError(
            f"{what} file {path} is encrypted; gRPC needs an unencrypted key "
            "(e.g. `openssl pkey -in KEY -out KEY.plain`) kept readable only by the service account."
        )
    return data


def _parse_certs(data: bytes, path: Path, what: str) -> None:
    """Parse with `cryptography` when it is installed, so a truncated or corrupted PEM fails here."""
    try:
        from cryptography import x509
    except ImportError:  # optional: the marker check above still catches the common mistakes
        return
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ConfigError(
            f"{what} file {path} is not a valid PEM certificate ({exc}); regenerate it."
        ) from exc


def _check_pair(cert: bytes, key: bytes, cert_path: Path, key_path: Path) -> None:
    """Refuse a key that does not belong to the certificate (the handshake would fail on every call)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        return
    try:
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"key file {key_path} is not a valid unencrypted PEM private key ({exc}).") from exc
    public = x509.load_pem_x509_certificates(cert)[0].public_key()
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if private.public_key().public_bytes(enc, fmt) != public.public_bytes(enc, fmt):
        raise ConfigError(
            f"key file {key_path} does not match the certificate {cert_path}; pass the key the certificate "
            "was issued for."
        )


@dataclass(frozen=True)
class TlsConfig:
    """Server side: its certificate chain and key; for mTLS also the CA that signs client certificates."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    require_client_auth: bool = False

    def credentials(self) -> grpc.ServerCredentials:
        """Load and check the files and build gRPC server credentials."""
        if self.require_client_auth and self.client_ca_file is None:
            raise ConfigError(
                "require_client_auth=True needs client_ca_file (the CA that issued the client certificates); "
                "set it, or turn client authentication off."
            )
        cert = _read_cert(self.cert_file, "server certificate")
        key = _read_key(self.key_file, "server key")
        _check_pair(cert, key, self.cert_file, self.key_file)
        client_ca = _read_cert(self.client_ca_file, "client CA") if self.client_ca_file else None
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=client_ca, require_client_auth=self.require_client_auth
        )


@dataclass(frozen=True)
class ClientTls:
    """Client side: the CA to trust (None: the system roots) and, for mTLS, the client certificate and key.

    ``server_name`` overrides the name checked against the server certificate, for servers reached by an
    address their certificate does not name (tests, port forwards).
    """

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        """Load and check the files and build gRPC channel credentials."""
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError(
                "a client certificate needs both cert_file and key_file; set both for mTLS, or neither."
            )
        ca = _read_cert(self.ca_file, "CA") if self.ca_file else None
        cert = key = None
        if self.cert_file is not None and self.key_file is not None:
            cert = _read_cert(self.cert_file, "client certificate")
            key = _read_key(self.key_file, "client key")
            _check_pair(cert, key, self.cert_file, self.key_file)
        return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
