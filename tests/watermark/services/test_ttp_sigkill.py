"""Durability of the TTP process: SIGKILL it while vendors are being granted seeds; after a restart every
grant it acknowledged is in the store and the audit chain verifies."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import pytest
from credid_cli import make_parties, run, start, ttp_serve_args

from safework.core.rpc.gen.watermark.v1 import ttp_pb2, ttp_pb2_grpc

pytestmark = pytest.mark.slow


def test_sigkill_under_load_loses_no_acknowledged_grant(tmp_path: Path) -> None:
    from safework.core.rpc import connect
    from safework.watermark.security.pki import client_tls
    from safework.watermark.security.signing import SigningKey
    from safework.watermark.ttp.audit import verify_store
    from safework.watermark.ttp.service import sign_as
    from safework.watermark.ttp.sqlite_store import SQLiteStore

    folder = tmp_path
    public = make_parties(folder, {"ttp": "ttp", "admin": "admin", "acme": "vendor"})
    serve = ttp_serve_args(folder, public)
    ttp, target = start(serve, folder / "ttp.log")
    acked: list[str] = []
    errors: list[str] = []
    try:
        run(
            "watermark",
            "ttp",
            "register-vendor",
            "--ttp",
            target,
            "--pki",
            str(folder),
            "--name",
            "admin",
            "--signing-key",
            str(folder / "admin.sign"),
            "--vendor-id",
            "acme",
            "--vendor-key",
            public["acme"],
            "--endpoint",
            "127.0.0.1:1",
        )
        key = SigningKey.load(folder / "acme.sign")
        stop = threading.Event()

        def vendor(worker: int) -> None:
            with connect(target, tls=client_tls(folder, "acme"), retries=0, default_timeout=10) as channel:
                stub = ttp_pb2_grpc.TtpServiceStub(channel)
                n = 0
                while not stop.is_set():
                    identity = ttp_pb2.IdentityMessage(model_id="default", model_version=f"{worker}.{n}")
                    request = ttp_pb2.IssueSeedRequest(vendor_id="acme", identity=identity)
                    try:
                        grant = stub.IssueSeed(sign_as(request, "IssueSeed", key, "acme"))
                    except Exception as exc:
                        errors.append(type(exc).__name__)
                        return
                    acked.append(grant.seed_id)
                    n += 1

        threads = [threading.Thread(target=vendor, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(acked) < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        ttp.send_signal(signal.SIGKILL)
        ttp.wait(timeout=10)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        if ttp.poll() is None:
            ttp.kill()
    assert len(acked) >= 50, (
        f"only {len(acked)} grants before the kill: {(folder / 'ttp.log').read_text()[-2000:]}"
    )
    with SQLiteStore(folder / "ttp.db") as store:
        missing = [g for g in acked if store.get_grant(g) is None]
        check = verify_store(store)
    assert not missing, f"{len(missing)} acknowledged grants lost"
    assert check.ok, str(check)
    restarted, target = start(serve, folder / "ttp2.log")  # and the TTP comes back on the same database
    try:
        out = json.loads(run("watermark", "ttp", "audit", "verify", "--db", str(folder / "ttp.db"), "--json"))
        assert out["ok"] and out["entries"] >= len(acked) + 1
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=30)
