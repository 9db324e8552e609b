"""Options and input readers shared by the watermark commands (the flag names are a public contract)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from safework.core.cli import read_jsonl_lines
from safework.watermark.errors import WatermarkInputError

F = TypeVar("F", bound=Callable[..., Any])


def scheme_options(func: F) -> F:
    """--scheme/--key-file/--bits/--model and the scheme tuning flags shared by embed and extract."""
    options = [
        click.option("--scheme", required=True, help="Watermark scheme (see `safework watermark schemes`)."),
        click.option("--key-file", required=True, type=click.Path(path_type=Path), help="Key from `keygen`."),
        click.option("--bits", required=True, type=int, help="Payload width in bits (0 for kgw)."),
        click.option(
            "--model", default="default", show_default=True, help="Generator: default, HF dir or GGUF."
        ),
        click.option("--symbol-bits", type=int, default=None, help="Bits per payload slot (scheme default)."),
        click.option(
            "--crc/--no-crc", default=False, show_default=True, help="Append a CRC-8 to the payload."
        ),
        click.option(
            "--delta", type=float, default=None, help="Logit bias of green tokens (scheme default)."
        ),
        click.option(
            "--option",
            "extra",
            multiple=True,
            metavar="NAME=VALUE",
            help="Any other scheme option, e.g. --option permutations=50 (repeatable).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def scheme_kwargs(delta: float | None, extra: tuple[str, ...]) -> dict[str, Any]:
    """Scheme options from --delta and repeated --option NAME=VALUE."""
    options: dict[str, Any] = {} if delta is None else {"delta": delta}
    for item in extra:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise WatermarkInputError(f"--option {item!r} must look like NAME=VALUE, e.g. permutations=50")
        options[name.strip().replace("-", "_")] = _number(value.strip())
    return options


def read_jsonl_field(path: Path, fields: tuple[str, ...]) -> list[str]:
    """The first present of ``fields`` from each line of a JSONL file; every bad line is reported at once
    (a ConfigError from ``safework.core.cli.read_jsonl_lines``)."""

    def field(obj: Any) -> str:
        value = next((obj[f] for f in fields if isinstance(obj, dict) and f in obj), None)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"needs a non-empty string field {' or '.join(repr(f) for f in fields)}")
        return value

    example = json.dumps({fields[0]: "..."})
    return [value for _, value in read_jsonl_lines(path, field, example=example)]


def one_or_file(
    value: str | None, path: Path | None, flag: str, file_flag: str, fields: tuple[str, ...]
) -> list[str]:
    """Inputs from exactly one of --FLAG TEXT or --FILE-FLAG JSONL."""
    if (value is None) == (path is None):
        raise WatermarkInputError(f"pass exactly one of {flag} TEXT or {file_flag} FILE")
    if value is not None:
        if not value.strip():
            raise WatermarkInputError(f"{flag} is empty; pass the text to use")
        return [value]
    assert path is not None
    return read_jsonl_field(path, fields)


def party_options(func: F) -> F:
    """--pki/--name/--signing-key: who this process is in the CredID services (certificate + signing key)."""
    options = [
        click.option(
            "--pki",
            "pki_dir",
            required=True,
            type=click.Path(path_type=Path, file_okay=False),
            help="PKI folder from `safework watermark pki init` holding ca.pem and NAME.pem/NAME.key.",
        ),
        click.option("--name", required=True, help="This party's certificate name (pki issue --name)."),
        click.option(
            "--signing-key",
            required=True,
            type=click.Path(path_type=Path, dir_okay=False),
            help="This party's Ed25519 request-signing key (`safework watermark pki keygen --out PATH`).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func
