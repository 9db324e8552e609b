"""``safework watermark ttp``: run the CredID trusted third party, register vendors, check the audit log."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from safework.core.console import print_json
from safework.core.errors import SafeworkError
from safework.watermark.commands.common import party_options

if TYPE_CHECKING:
    from safework.watermark.ttp.store import TTPStore


@click.group("ttp")
def ttp_group() -> None:
    """The CredID trusted third party: seed grants, attribution, audit log."""


@ttp_group.command("init-secret")
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False), help="File to write.")
def init_secret_command(out: Path) -> None:
    """Write a fresh 32-byte seed secret (64 hex digits, mode 0600); every seed is derived from it."""
    from safework.watermark.ttp.seeds import write_secret

    try:
        write_secret(out)
    except SafeworkError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {out}")


def open_store(db: str) -> TTPStore:
    """SQLite for a path, PostgreSQL for a ``postgresql://`` DSN."""
    if db.startswith(("postgresql://", "postgres://")):
        from safework.watermark.ttp.postgres_store import PostgresStore

        return PostgresStore(db)
    from safework.watermark.ttp.sqlite_store import SQLiteStore

    return SQLiteStore(db)


@ttp_group.command("serve")
@click.option("--listen", required=True, help="host:port to listen on (port 0 picks a free one).")
@click.option("--db", required=True, help="SQLite file, or a postgresql:// DSN shared by several TTPs.")
@party_options
@click.option(
    "--seed-secret",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Seed secret from `ttp init-secret`.",
)
@click.option("--admin", "admins", multiple=True, metavar="NAME=PUBHEX", help="An admin's signing key.")
@click.option(
    "--requester", "requesters", multiple=True, metavar="NAME=PUBHEX", help="A party allowed to attribute."
)
@click.option("--period", type=int, default=86_400, show_default=True, help="Seconds per issuance period.")
@click.option("--payload-bits", type=int, default=16, show_default=True, help="Identity payload width.")
@click.option("--extract-timeout", type=float, default=120.0, show_default=True, help="Seconds per vendor.")
@click.option(
    "--attribution-rate",
    type=float,
    default=2.0,
    show_default=True,
    help="Attributions per second each requester may make on average (a token bucket).",
)
@click.option(
    "--attribution-burst",
    type=float,
    default=10.0,
    show_default=True,
    help="...and at most this many at once.",
)
@click.option(
    "--record-requests",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Privacy audit: append every request's raw bytes to this file (it holds suspect texts).",
)
def serve_command(
    listen: str,
    db: str,
    pki_dir: Path,
    name: str,
    signing_key: Path,
    seed_secret: Path,
    admins: tuple[str, ...],
    requesters: tuple[str, ...],
    period: int,
    payload_bits: int,
    extract_timeout: float,
    attribution_rate: float,
    attribution_burst: float,
    record_requests: Path | None,
) -> None:
    """Serve the TTP over mTLS until SIGTERM/SIGINT."""
    from safework.core.rpc import build_server, serve_forever
    from safework.core.rpc.gen.watermark.v1 import ttp_pb2_grpc
    from safework.core.rpc.recording import RequestRecorder
    from safework.watermark.client import parse_named_key
    from safework.watermark.security.pki import client_tls, server_tls
    from safework.watermark.security.signing import SigningKey, key_id_of
    from safework.watermark.ttp.attribution import GrpcVendorCaller
    from safework.watermark.ttp.seeds import SeedIssuer, load_secret
    from safework.watermark.ttp.service import TtpConfig, TtpServicer

    try:
        if not admins:
            raise click.UsageError("give at least one --admin NAME=PUBHEX (only admins register vendors)")

        def keyring(items: tuple[str, ...]) -> dict[str, dict[str, bytes]]:
            ring: dict[str, dict[str, bytes]] = {}
            for item in items:
                who, raw = parse_named_key(item)
                ring.setdefault(who, {})[key_id_of(raw)] = raw
            return ring

        key = SigningKey.load(signing_key)
        config = TtpConfig(
            key=key,
            issuer=SeedIssuer(load_secret(seed_secret), period, payload_bits),
            admins=keyring(admins),
            requesters=keyring(requesters),
            extract_timeout_s=extract_timeout,
            attribution_rate_per_s=attribution_rate,
            attribution_burst=attribution_burst,
        )
        store = open_store(db)
        caller = GrpcVendorCaller(client_tls(pki_dir, name))
        servicer = TtpServicer(store, config, caller)
        running = build_server(
            listen,
            [(ttp_pb2_grpc.add_TtpServiceServicer_to_server, servicer)],
            tls=server_tls(pki_dir, name),
            interceptors=[RequestRecorder(record_requests)] if record_requests else [],
        )
    except SafeworkError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"TTP listening on {running.address} (mTLS); signing key {key.key_id}; store {db}", err=True)
    click.echo(f"TTP public key {key.public_bytes().hex()}", err=True)
    click.echo(f"listening {running.address}", nl=True)  # stdout, for scripts
    try:
        serve_forever(running)
    finally:
        caller.close()
        store.close()


@ttp_group.command("register-vendor")
@click.option("--ttp", "target", required=True, help="host:port of the TTP.")
@party_options
@click.option("--vendor-id", required=True, help="The vendor's id (its certificate name).")
@click.option("--vendor-key", required=True, metavar="PUBHEX", help="The vendor's signing public key (hex).")
@click.option("--endpoint", required=True, help="host:port where the vendor serves Extract.")
@click.option("--model", "models", multiple=True, default=("default",), show_default=True, help="Model id.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def register_vendor_command(
    target: str,
    pki_dir: Path,
    name: str,
    signing_key: Path,
    vendor_id: str,
    vendor_key: str,
    endpoint: str,
    models: tuple[str, ...],
    as_json: bool,
) -> None:
    """Register (or update) a vendor; only an admin may."""
    from safework.watermark.client import Party, TtpClient, parse_named_key

    try:
        _, raw = parse_named_key(f"{vendor_id}={vendor_key}")
        with TtpClient(target, Party.load(pki_dir, name, signing_key)) as ttp:
            response = ttp.register_vendor(vendor_id, raw, endpoint, models)
    except SafeworkError as exc:
        raise click.ClickException(str(exc)) from exc
    record = {
        "vendor": vendor_id,
        "ttp_public_key": response.ttp_public_key.hex(),
        "audit": response.audit_sequence,
    }
    if as_json:
        print_json(record)
    else:
        click.echo(f"registered {vendor_id}; TTP public key {record['ttp_public_key']}")


@ttp_group.group("audit")
def audit_group() -> None:
    """The hash-chained audit log."""


@audit_group.command("verify")
@click.option("--db", required=True, help="The TTP's SQLite file or postgresql:// DSN.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def audit_verify_command(db: str, as_json: bool) -> None:
    """Recompute every hash of the audit chain; exit 1 and name the first bad entry if it is broken."""
    from safework.watermark.ttp.audit import verify_store

    try:
        store = open_store(db)
        try:
            check = verify_store(store)
        finally:
            store.close()
    except SafeworkError as exc:
        raise click.ClickException(str(exc)) from exc
    record = {
        "ok": check.ok,
        "entries": check.checked,
        "head": check.head_hash,
        "first_bad_index": check.first_bad_index,
        "reason": check.reason,
    }
    if as_json:
        print_json(record)
    elif check.ok:
        click.echo(f"audit chain verifies: {check.checked} entries, head {check.head_hash}")
    else:
        click.echo(f"audit chain BROKEN at entry {check.first_bad_index}: {check.reason}", err=True)
    if not check.ok:
        raise SystemExit(1)
