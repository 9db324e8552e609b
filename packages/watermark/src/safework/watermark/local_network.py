"""A CredID network on 127.0.0.1 as separate processes: one TTP and N vendors, each a ``safework`` command.

Every party gets what a real deployment gives it: a certificate from one CA (mTLS on every link), its own
Ed25519 signing key, and for vendors a private watermark key; the TTP gets its seed secret and a SQLite
store. The admin registers each vendor with the endpoint it will listen on, then the vendor process
starts, loads its model and asks the TTP for this period's seed. Used by ``safework demo`` and the
end-to-end tests; ``stop()`` (or leaving the ``with`` block) terminates every process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from safework.core.errors import SafeworkError

START_TIMEOUT_S = 900.0  # a cold start converts a GGUF model first, minutes on a small box


class NetworkStartError(SafeworkError):
    """A party's process exited or stayed silent instead of reporting its address."""


@dataclass(frozen=True)
class VendorSpec:
    """One vendor to start: its id and the model it serves (``default``, an HF folder or a GGUF file)."""

    name: str
    model: str = "default"
    model_id: str = "default"


@dataclass
class LocalNetwork:
    """The running parties: addresses, the PKI folder, and each party's signing key file."""

    folder: Path
    ttp: str = ""
    vendors: dict[str, str] = field(default_factory=dict)
    ttp_public_key: bytes = b""
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def key_file(self, name: str) -> Path:
        return self.folder / f"{name}.sign"

    def __enter__(self) -> LocalNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM every process, then SIGKILL what is still running after ``timeout_s``."""
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()


def free_port() -> int:
    """A port on 127.0.0.1 free right now (another process may still take it before it is bound)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def safework_command(*args: str) -> list[str]:
    """The argv that runs ``safework ARGS`` with this interpreter (no console script needed)."""
    return [sys.executable, "-m", "safework.core.cli", *args]


def _launch(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    with log.open("w") as handle:
        return subprocess.Popen(
            safework_command(*args),
            stdout=subprocess.PIPE,
            stderr=handle,
            text=True,
            env=env,
            start_new_session=True,
        )


def _address(proc: subprocess.Popen[str], label: str, log: Path, timeout_s: float) -> str:
    """The ``listening ADDR`` line a ``safework ... serve`` command prints once it serves."""
    assert proc.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout_s)
    line = lines[0] if lines else ""
    if not line.startswith("listening "):
        if proc.poll() is None:
            proc.kill()
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise NetworkStartError(f"{label} did not start within {timeout_s:.0f} s (log {log}):\n{tail}")
    return line.split()[1]


def _parties(folder: Path, vendors: Sequence[VendorSpec], requesters: Sequence[str]) -> dict[str, bytes]:
    """CA, certificates, signing keys, the TTP's seed secret and each vendor's watermark key."""
    from safework.watermark.keys import WatermarkKey
    from safework.watermark.security.pki import init_ca, issue
    from safework.watermark.security.signing import SigningKey
    from safework.watermark.ttp.seeds import write_secret

    init_ca(folder)
    roles = {"ttp": "ttp", "admin": "admin", **dict.fromkeys(requesters, "client")}
    roles.update({v.name: "vendor" for v in vendors})
    public = {}
    for name, role in roles.items():
        issue(folder, name, role=role)  # type: ignore[arg-type]
        key = SigningKey.generate()
        key.save(folder / f"{name}.sign")
        public[name] = key.public_bytes()
    write_secret(folder / "seed.secret")
    for vendor in vendors:
        WatermarkKey.generate().to_file(folder / f"{vendor.name}.wm")
    return public


def start_network(
    folder: Path,
    vendors: Sequence[VendorSpec],
    *,
    requesters: Sequence[str] = ("auditor",),
    threads_per_vendor: int | None = None,
    ttp_args: Sequence[str] = (),
    timeout_s: float = START_TIMEOUT_S,
) -> LocalNetwork:
    """Make every party's credentials in ``folder`` (which must be empty or absent), start the TTP,
    register the vendors and start them; vendors load their models in parallel."""
    from safework.watermark.client import Party, TtpClient

    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise NetworkStartError(f"{folder} is not empty; give a fresh folder for the network's credentials")
    names = [v.name for v in vendors]
    if len(set(names)) != len(names) or {"ttp", "admin", *requesters} & set(names):
        raise NetworkStartError(f"vendor names must be distinct and not ttp/admin/requesters: {names}")
    public = _parties(folder, vendors, requesters)
    net = LocalNetwork(folder, ttp_public_key=public["ttp"])
    try:
        party = ("--pki", str(folder))
        ttp = _launch(
            [
                "watermark",
                "ttp",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--db",
                str(folder / "ttp.db"),
                *party,
                "--name",
                "ttp",
                "--signing-key",
                str(net.key_file("ttp")),
                "--seed-secret",
                str(folder / "seed.secret"),
                "--admin",
                f"admin={public['admin'].hex()}",
                *(a for r in requesters for a in ("--requester", f"{r}={public[r].hex()}")),
                *ttp_args,
            ],
            folder / "ttp.log",
        )
        net.processes.append(ttp)
        net.ttp = _address(ttp, "the TTP", folder / "ttp.log", timeout_s)
        endpoints = {v.name: f"127.0.0.1:{free_port()}" for v in vendors}
        admin = Party.load(folder, "admin", net.key_file("admin"))
        with TtpClient(net.ttp, admin) as client:
            for vendor in vendors:
                client.register_vendor(
                    vendor.name, public[vendor.name], endpoints[vendor.name], [vendor.model_id]
                )
        env = dict(os.environ)
        if threads_per_vendor:
            env["OMP_NUM_THREADS"] = str(threads_per_vendor)
        launched = []
        for vendor in vendors:
            log = folder / f"{vendor.name}.log"
            proc = _launch(
                [
                    "watermark",
                    "vendor",
                    "serve",
                    "--listen",
                    endpoints[vendor.name],
                    "--ttp",
                    net.ttp,
                    *party,
                    "--name",
                    vendor.name,
                    "--signing-key",
                    str(net.key_file(vendor.name)),
                    "--ttp-key",
                    public["ttp"].hex(),
                    "--watermark-secret",
                    str(folder / f"{vendor.name}.wm"),
                    "--grants",
                    str(folder / f"{vendor.name}.grants"),
                    "--model",
                    vendor.model,
                    "--model-id",
                    vendor.model_id,
                ],
                log,
                env,
            )
            net.processes.append(proc)
            launched.append((vendor.name, proc, log))
        deadline = time.monotonic() + timeout_s
        for name, proc, log in launched:
            net.vendors[name] = _address(proc, f"vendor {name}", log, max(1.0, deadline - time.monotonic()))
    except BaseException:
        net.stop()
        raise
    return net
