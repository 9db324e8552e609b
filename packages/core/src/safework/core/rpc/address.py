"""``host:port`` addresses, validated at the boundary so a typo fails with a message, not a hang."""

from __future__ import annotations

import re
from dataclasses import dataclass

from safework.core.errors import ConfigError

_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.\-]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Address:
    """A parsed TCP address; IPv6 hosts are kept without brackets."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_address(text: str, *, allow_port_zero: bool = False) -> Address:
    """Parse ``host:port``, ``[ipv6]:port`` or ``0.0.0.0:0`` (port 0 only for servers: pick a free port)."""
    example = "127.0.0.1:50051, localhost:50051 or [::1]:50051"
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"empty gRPC address; give host:port, e.g. {example}.")
    text = text.strip()
    if "://" in text:
        raise ConfigError(f"gRPC address {text!r} has a URL scheme; give plain host:port, e.g. {example}.")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":") or not host:
            raise ConfigError(f"gRPC address {text!r} is not [ipv6]:port; e.g. [::1]:50051.")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ConfigError(f"gRPC address {text!r} has no port; give host:port, e.g. {example}.")
        if ":" in host:
            raise ConfigError(f"IPv6 address {text!r} needs brackets around the host, e.g. [::1]:50051.")
        if not _HOST_RE.match(host):
            raise ConfigError(f"gRPC address {text!r} has an invalid host {host!r}; e.g. {example}.")
    if not port_text.isdigit():
        raise ConfigError(f"gRPC address {text!r} has a non-numeric port {port_text!r}; e.g. {example}.")
    port = int(port_text)
    lowest = 0 if allow_port_zero else 1
    if not lowest <= port <= 65535:
        hint = (
            "use 0 to let the server pick a free port" if allow_port_zero else "a client needs the real port"
        )
        raise ConfigError(f"gRPC address {text!r}: port {port} is outside {lowest}..65535 ({hint}).")
    return Address(host, port)
