"""The watermark package as a plugin of core: its schemes, attacks and the ``safework watermark`` group.

Components are imported inside the hooks so that ``safework --help`` never pays for torch.
"""

from __future__ import annotations

import click

from safework.core.hookspecs import Register, hookimpl
from safework.core.registry_cli import listing_command
from safework.watermark.commands.attribute import attribute_command
from safework.watermark.commands.demo import demo_command
from safework.watermark.commands.embed import embed_command
from safework.watermark.commands.evaluate import evaluate_command
from safework.watermark.commands.extract import extract_command
from safework.watermark.commands.keygen import keygen_command
from safework.watermark.commands.pki import pki_group
from safework.watermark.commands.ttp import ttp_group
from safework.watermark.commands.vendor import vendor_group


@click.group("watermark")
def watermark_group() -> None:
    """Multi-bit text watermarking (CredID): keys, embedding, extraction, evaluation."""


watermark_group.add_command(listing_command("register_watermark_schemes", "watermark schemes", "schemes"))
watermark_group.add_command(listing_command("register_attacks", "attacks", "attacks"))
for _command in (
    keygen_command,
    embed_command,
    extract_command,
    evaluate_command,
    pki_group,
    ttp_group,
    vendor_group,
    attribute_command,
):
    watermark_group.add_command(_command)


@hookimpl
def register_watermark_schemes(register: Register) -> None:
    from safework.watermark.schemes.credid import CredIDScheme
    from safework.watermark.schemes.ctwl import CTWLHashScheme
    from safework.watermark.schemes.kgw import KGWScheme
    from safework.watermark.schemes.mpac import MPACScheme

    for scheme in (CredIDScheme, KGWScheme, MPACScheme, CTWLHashScheme):
        register(scheme.name, scheme)


@hookimpl
def register_attacks(register: Register) -> None:
    from safework.watermark.attacks import BUILTIN_ATTACKS

    for name, attack in BUILTIN_ATTACKS.items():
        register(name, attack)


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(watermark_group)
    cli.add_command(demo_command)
