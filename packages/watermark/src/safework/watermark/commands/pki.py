"""``safework watermark pki``: the CA, the per-party mTLS certificates and the Ed25519 signing keys of the
TTP/vendor services.

The security modules (cryptography, grpc) are imported inside the commands so ``safework --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click

from safework.core.console import print_json

# Mirrors safework.watermark.security.pki.ROLES (a test keeps them equal; importing it here would load grpc).
ROLE_CHOICES = ("ttp", "vendor", "client", "admin")


@click.group("pki")
def pki_group() -> None:
    """mTLS certificates and request-signing keys for the CredID TTP and vendor services."""


@pki_group.command("init")
@click.option(
    "--dir", "folder", required=True, type=click.Path(path_type=Path), help="PKI folder (created if missing)."
)
@click.option(
    "--common-name", default="safework-credid-ca", show_default=True, help="Subject CN of the CA certificate."
)
@click.option("--days", type=int, default=3650, show_default=True, help="Validity of the CA certificate.")
@click.option(
    "--overwrite", is_flag=True, help="Replace an existing CA (certificates it issued stop working)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def init_command(folder: Path, common_name: str, days: int, overwrite: bool, as_json: bool) -> None:
    """Create the certificate authority (ca.pem, and ca.key readable by its owner only)."""
    from safework.watermark.security.pki import init_ca

    ca = init_ca(folder, common_name=common_name, days=days, overwrite=overwrite)
    record = {
        "cert": str(ca.cert),
        "key": str(ca.key),
        "common_name": ca.common_name,
        "fingerprint_sha256": ca.fingerprint_sha256,
        "not_valid_after": ca.not_valid_after.isoformat(),
    }
    if as_json:
        print_json(record)
        return
    click.echo(f"wrote {ca.cert} (CA certificate: give it to every party)")
    click.echo(f"wrote {ca.key} (CA key, mode 0600: keep it offline; it can mint any identity)")
    click.echo(f"fingerprint sha256 {ca.fingerprint_sha256}, valid until {ca.not_valid_after:%Y-%m-%d}")


@pki_group.command("issue")
@click.option(
    "--dir", "folder", required=True, type=click.Path(path_type=Path), help="PKI folder made by `pki init`."
)
@click.option(
    "--name", required=True, help="Party name: the certificate CN and the file stem (e.g. vendor-a)."
)
@click.option("--role", required=True, type=click.Choice(ROLE_CHOICES), help="The party's protocol role.")
@click.option(
    "--host",
    "hosts",
    multiple=True,
    metavar="HOST",
    help="IP or DNS name clients use to reach this party (repeatable; default 127.0.0.1 and localhost).",
)
@click.option("--days", type=int, default=825, show_default=True, help="Validity of the certificate.")
@click.option("--overwrite", is_flag=True, help="Replace an existing certificate and key of this name.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def issue_command(
    folder: Path, name: str, role: str, hosts: tuple[str, ...], days: int, overwrite: bool, as_json: bool
) -> None:
    """Issue NAME.pem and NAME.key, signed by the CA, for TLS as server and as client."""
    from safework.watermark.security.pki import DEFAULT_HOSTS, Role, issue

    chosen = cast(Role, role)  # click.Choice has checked it
    issued = issue(folder, name, role=chosen, hosts=hosts or DEFAULT_HOSTS, days=days, overwrite=overwrite)
    record = {
        "cert": str(issued.cert),
        "key": str(issued.key),
        "name": issued.name,
        "role": issued.role,
        "hosts": list(issued.hosts),
        "fingerprint_sha256": issued.fingerprint_sha256,
        "not_valid_after": issued.not_valid_after.isoformat(),
    }
    if as_json:
        print_json(record)
        return
    click.echo(
        f"wrote {issued.cert} ({issued.role} certificate for {issued.name}; hosts {', '.join(issued.hosts)})"
    )
    click.echo(f"wrote {issued.key} (mode 0600: give it to {issued.name} only)")
    click.echo(
        f"fingerprint sha256 {issued.fingerprint_sha256}, valid until {issued.not_valid_after:%Y-%m-%d}"
    )


@pki_group.command("keygen")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Where to write the key (PEM).")
@click.option("--overwrite", is_flag=True, help="Replace an existing key file (its key is lost).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def keygen_command(out: Path, overwrite: bool, as_json: bool) -> None:
    """Write a new Ed25519 signing key (0600) and print its key id and public key."""
    from safework.watermark.security.signing import SigningKey

    key = SigningKey.generate()
    key.save(out, overwrite=overwrite)
    public_hex = key.public_bytes().hex()
    if as_json:
        print_json({"key_file": str(out), "key_id": key.key_id, "public_key": public_hex})
        return
    click.echo(f"wrote {out} (Ed25519 signing key, mode 0600)")
    click.echo(f"key id {key.key_id}")
    click.echo(f"public key {public_hex}")
