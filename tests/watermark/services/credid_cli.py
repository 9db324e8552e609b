"""Helpers for the CredID process tests: run the `safework` CLI and start its servers as subprocesses."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from safework.watermark.local_network import free_port, safework_command

cli = safework_command
__all__ = ["cli", "free_port", "keygen", "make_parties", "run", "start", "ttp_serve_args"]


def run(*args: str) -> str:
    done = subprocess.run(cli(*args), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def start(args: list[str], log: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(cli(*args), stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("listening "), log.read_text()
    return proc, line.split()[1]


def keygen(folder: Path, name: str) -> str:
    out = json.loads(run("watermark", "pki", "keygen", "--out", str(folder / f"{name}.sign"), "--json"))
    return str(out["public_key"])


def make_parties(folder: Path, roles: dict[str, str]) -> dict[str, str]:
    """A CA, a certificate per party, a signing key per party and the TTP's seed secret, all through the
    CLI; returns each party's public signing key (hex)."""
    run("watermark", "pki", "init", "--dir", str(folder))
    for name, role in roles.items():
        run("watermark", "pki", "issue", "--dir", str(folder), "--name", name, "--role", role)
    run("watermark", "ttp", "init-secret", "--out", str(folder / "seed.secret"))
    return {name: keygen(folder, name) for name in roles}


def ttp_serve_args(folder: Path, public: dict[str, str], *extra: str) -> list[str]:
    """`watermark ttp serve` on a free loopback port, with the parties of :func:`make_parties`."""
    return [
        "watermark", "ttp", "serve", "--listen", "127.0.0.1:0", "--db", str(folder / "ttp.db"),
        "--pki", str(folder), "--name", "ttp", "--signing-key", str(folder / "ttp.sign"),
        "--seed-secret", str(folder / "seed.secret"), "--admin", f"admin={public['admin']}", *extra,
    ]  # fmt: skip
