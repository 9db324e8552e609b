"""``safework watermark vendor serve``: an LLM vendor of the CredID protocol."""

from __future__ import annotations

from pathlib import Path

import click

from safework.core.errors import SafeworkError
from safework.watermark.commands.common import party_options


@click.group("vendor")
def vendor_group() -> None:
    """A CredID vendor: generates with TTP-issued seeds, extracts when the TTP asks."""


@vendor_group.command("serve")
@click.option("--listen", required=True, help="host:port to listen on.")
@click.option("--ttp", "ttp_target", required=True, help="host:port of the TTP (seeds are requested there).")
@party_options
@click.option("--ttp-key", required=True, metavar="PUBHEX", help="The TTP's signing public key (hex).")
@click.option(
    "--watermark-secret",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="This vendor's private watermark key (`safework watermark keygen --out PATH`); never leaves here.",
)
@click.option(
    "--grants",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="SQLite file keeping the grants received from the TTP.",
)
@click.option("--model", default="default", show_default=True, help="default, an HF folder or a GGUF file.")
@click.option("--model-id", default="default", show_default=True, help="The model id registered at the TTP.")
@click.option("--model-version", default="1", show_default=True, help="Model version bound into the seed.")
@click.option(
    "--delta",
    type=click.FloatRange(0, 20, min_open=True),
    default=2.5,
    show_default=True,
    help="credid's green-list bias (larger: stronger mark, more distortion).",
)
def serve_command(
    listen: str,
    ttp_target: str,
    pki_dir: Path,
    name: str,
    signing_key: Path,
    ttp_key: str,
    watermark_secret: Path,
    grants: Path,
    model: str,
    model_id: str,
    model_version: str,
    delta: float,
) -> None:
    """Load the model, get this period's seed from the TTP, serve Generate and Extract over mTLS."""
    from safework.core.rpc import build_server, serve_forever
    from safework.core.rpc.gen.watermark.v1 import ttp_pb2_grpc, vendor_pb2_grpc
    from safework.watermark.client import Party, parse_named_key
    from safework.watermark.engine import load_watermarker
    from safework.watermark.keys import WatermarkKey
    from safework.watermark.security.pki import server_tls
    from safework.watermark.vendor.grants import GrantBook
    from safework.watermark.vendor.service import VendorConfig, VendorServicer

    try:
        party = Party.load(pki_dir, name, signing_key)
        _, ttp_public = parse_named_key(f"ttp={ttp_key}")
        secret = WatermarkKey.from_file(watermark_secret).secret
        click.echo(f"loading {model} ...", err=True)
        watermarker = load_watermarker("credid", WatermarkKey(secret), bits=16, model=model, delta=delta)
        config = VendorConfig(name, party.key, secret, ttp_public, model_id, model_version)
        servicer = VendorServicer(config, watermarker, GrantBook(grants))
        running = build_server(
            listen,
            [(vendor_pb2_grpc.add_VendorServiceServicer_to_server, servicer)],
            tls=server_tls(pki_dir, name),
        )
        channel = party.channel(ttp_target)
        grant = servicer.request_grant(ttp_pb2_grpc.TtpServiceStub(channel))
    except SafeworkError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"vendor {name} listening on {running.address} (mTLS); grant {grant.seed_id}", err=True)
    click.echo(f"listening {running.address}", nl=True)  # stdout, for scripts
    try:
        serve_forever(running)
    finally:
        channel.close()
