"""A grant the store acknowledged survives the process being killed mid-write (SIGKILL: no cleanup runs).

The child prints a grant id only after add_grant returned, so every id the parent read is a promise the
store made; after the kill, the reopened database must keep every one, and its audit chain must verify.
This catches a store that acknowledges before it commits (buffering, batching); surviving power loss as
well is what synchronous=FULL adds, which a test cannot simulate.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from safework.watermark.ttp.audit import verify_store
from safework.watermark.ttp.sqlite_store import SQLiteStore

CHILD = """
import sys, time
from safework.watermark.ttp.sqlite_store import SQLiteStore
from safework.watermark.ttp.store import GrantRecord, IdentityMessage, VendorRecord

store = SQLiteStore(sys.argv[1])
store.add_vendor(VendorRecord("acme-ai", "Acme", (("k1", bytes(32)),), ("m",), "credid", "1", "h:1", "", 1.0))
print("ready", flush=True)
n = 0
while True:
    identity = IdentityMessage("acme-ai", "m", "1", n)
    store.add_grant(GrantRecord(f"g{n}", identity, 10_000 + n, time.time(), bytes(64)))
    print(f"g{n}", flush=True)
    store.append_audit("seed_issued", {"grant_id": f"g{n}", "padding": "x" * (n % 500)})
    n += 1
"""


def test_acknowledged_grants_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "ttp.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stdout is not None
    acked: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            if line.strip() == "ready":
                ready.set()
            elif line.strip():
                acked.append(line.strip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        started = ready.wait(60)
        time.sleep(1.5 if started else 0)
        if child.poll() is not None:
            err = child.stderr.read() if child.stderr else ""
            raise AssertionError(f"child exited on its own ({child.returncode}): {err}")
        assert started, "child never became ready"
    finally:
        child.kill()  # SIGKILL: no atexit, no finally, no close() in the child
        child.wait(30)
    reader.join(30)  # ids still in the pipe were printed after add_grant returned: they are acks too
    assert child.returncode == -signal.SIGKILL
    assert len(acked) >= 5, f"only {len(acked)} grants acknowledged in 1.5 s"

    with SQLiteStore(path) as store:
        missing = [g for g in acked if store.get_grant(g) is None]
        assert not missing, f"{len(missing)} acknowledged grants lost, e.g. {missing[:3]}"
        assert store.count_grants() >= len(acked)
        check = verify_store(store)
        assert check.ok, str(check)
        assert check.checked >= len(acked) - 1
